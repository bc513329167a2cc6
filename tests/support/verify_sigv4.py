#!/usr/bin/env python3
"""Checks, with botocore's SigV4 and not the sidecar's, what a region received.

Usage: verify_sigv4.py FILE

FILE is JSON:
  {"access_key_id": "...", "secret_access_key": "...",
   "session_token": "..." | null,          # the header the sidecar must send, or must not
   "forbidden": ["AKIDCLIENT", ...],       # strings no header may contain
   "records": [{"method": "POST", "url": "http://host:port/",
                "headers": [["name", "value"], ...], "body_b64": "...",
                "region": "us-east-1"}, ...]}

For each record it takes the SignedHeaders and X-Amz-Date the request carries, rebuilds the
canonical request, string to sign and signature with botocore for service `dynamodb` and the
record's region, and compares. It also checks the credential scope (key id, date, region,
service), the session token, the payload hash header if present, and the forbidden strings.

Exit 0: every record verified (and there was at least one). Exit 1: a mismatch, with details.
Exit 2: botocore is not importable or the input is unusable.
"""

import base64
import hashlib
import json
import re
import sys

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest, HTTPHeaders
    from botocore.credentials import Credentials
except ImportError as error:
    print(
        f"botocore is not importable with {sys.executable} ({error}); "
        "run deploy/local/ensure-venv boto3 (botocore comes with it) "
        "or point $PYTHON at a Python that has it",
        file=sys.stderr,
    )
    sys.exit(2)

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;_.-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


class SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4, signing exactly the headers the request says it signed.

    botocore would otherwise pick the headers itself (and leave out e.g. User-Agent), which is a
    policy of botocore's client, not part of checking a signature someone else made.
    """

    def __init__(self, credentials, service, region, signed):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in self._signed:
            values = request.headers.get_all(name)
            if not values:
                raise ValueError(f"signed header {name!r} is not in the request")
            for value in values:
                chosen[name] = value
        return chosen


def header(headers, name):
    values = [v for (n, v) in headers if n.lower() == name.lower()]
    return values[0] if values else None


def check(record, spec):
    """Returns a list of problems with one record (empty when it verifies)."""
    problems = []
    headers = record["headers"]
    body = base64.b64decode(record["body_b64"])
    region = record["region"]
    for forbidden in spec.get("forbidden", []):
        for name, value in headers:
            if forbidden in value:
                problems.append(f"header {name} contains {forbidden!r}")
    authorization = header(headers, "authorization")
    amz_date = header(headers, "x-amz-date")
    if authorization is None or amz_date is None:
        return problems + ["no Authorization or X-Amz-Date header"]
    match = AUTHORIZATION.match(authorization)
    if match is None:
        return problems + [f"Authorization not SigV4: {authorization!r}"]
    expected_scope = (spec["access_key_id"], amz_date[:8], region, "dynamodb")
    scope = (match["key"], match["date"], match["region"], match["service"])
    if scope != expected_scope:
        problems.append(f"credential scope {scope} != expected {expected_scope}")
    token = header(headers, "x-amz-security-token")
    if token != spec.get("session_token"):
        problems.append(f"X-Amz-Security-Token {token!r} != {spec.get('session_token')!r}")
    content_sha = header(headers, "x-amz-content-sha256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        problems.append("X-Amz-Content-SHA256 is not the body's hash")
    signed = match["signed"].split(";")
    if "host" not in signed:
        problems.append("host is not a signed header")

    request = AWSRequest(method=record["method"], url=record["url"], data=body)
    for name, value in headers:
        request.headers[name] = value
    request.context["timestamp"] = amz_date
    credentials = Credentials(spec["access_key_id"], spec["secret_access_key"], token)
    auth = SignedHeadersOnly(credentials, "dynamodb", region, signed)
    try:
        canonical = auth.canonical_request(request)
    except ValueError as error:
        return problems + [str(error)]
    string_to_sign = auth.string_to_sign(request, canonical)
    expected = auth.signature(string_to_sign, request)
    if expected != match["signature"]:
        problems.append(
            f"signature {match['signature']} != botocore's {expected}\n"
            f"--- canonical request (botocore) ---\n{canonical}\n"
            f"--- string to sign (botocore) ---\n{string_to_sign}"
        )
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as file:
        spec = json.load(file)
    records = spec.get("records", [])
    if not records:
        print("no records to verify: nothing was checked", file=sys.stderr)
        return 1
    failed = 0
    for index, record in enumerate(records):
        target = header(record["headers"], "x-amz-target") or "(no target)"
        problems = check(record, spec)
        if problems:
            failed += 1
            print(f"FAIL #{index} {target} for {record['region']}:")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(f"ok   #{index} {target} for {record['region']}")
    print(f"{len(records) - failed} verified, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
