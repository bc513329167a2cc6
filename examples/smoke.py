#!/usr/bin/env python3
"""Puts test123 through GlobalScale with plain boto3, reads it back, shows its version and
its audit record, read straight from the home region: the sidecar refuses every request
that names its audit table.

Start the local stack first (deploy/local/up --detach), then:

    examples/smoke.py

The only change an application makes to use GlobalScale is endpoint_url. The keys are
dummies on purpose: the sidecar re-signs every request with its own credentials. Each run
reads the item's Version and writes with it, so the sidecar's optimistic lock stores the
next one: 1 on the first run, 2 on the second, and so on.

    GLOBALSCALE_ENDPOINT        the sidecar (default http://localhost:8000)
    GLOBALSCALE_AUDIT_ENDPOINT  the home region's endpoint, where to read the audit table
                                (default http://localhost:8001, the local stack's us-east-1,
                                read with the dummy keys); when set, read with the default AWS
                                credential chain, e.g. terraform/'s auditor role
    GLOBALSCALE_HOME_REGION     the sidecar's first region, its key prefix (default us-east-1)
    GLOBALSCALE_TABLE           the managed table test123 goes to (default GlobalCatalog)
    GLOBALSCALE_AUDIT_TABLE     its audit table (default: the table's name and "-audit")
"""

import os
import sys
import time

try:
    import boto3
    from botocore.exceptions import EndpointConnectionError
except ImportError:
    # Run under the repo's venv if this interpreter lacks boto3 and the venv has it.
    here = os.path.dirname(os.path.abspath(__file__))
    venv = os.path.join(here, "..", ".tools", "venv")
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(venv_python, [venv_python, *sys.argv])
    sys.exit("smoke.py: boto3 is missing; run deploy/local/ensure-venv, then examples/smoke.py")

ENDPOINT = os.environ.get("GLOBALSCALE_ENDPOINT", "http://localhost:8000")
AUDIT_ENDPOINT = os.environ.get("GLOBALSCALE_AUDIT_ENDPOINT")
LOCAL_HOME_REGION = "http://localhost:8001"
HOME_REGION = os.environ.get("GLOBALSCALE_HOME_REGION", "us-east-1")
DUMMY_KEYS = {"aws_access_key_id": "app", "aws_secret_access_key": "app"}

TABLE = os.environ.get("GLOBALSCALE_TABLE", "GlobalCatalog")
AUDIT_TABLE = os.environ.get("GLOBALSCALE_AUDIT_TABLE", f"{TABLE}-audit")
KEY = {"ItemID": {"S": "test123"}, "Category": {"S": "Demo"}}
AUDIT_WAIT_SECONDS = 30


def fail(message):
    sys.exit(f"smoke.py: FAIL: {message}")


def put_and_read(client):
    print(f"== put test123 through {ENDPOINT} (boto3 {boto3.__version__})")
    before = client.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True).get("Item")
    item = {**KEY, "Name": {"S": "Example"}}
    if before and "Version" in before:
        # The version this writer read: a writer that read an older one gets a
        # ConditionalCheckFailedException instead of overwriting.
        item["Version"] = before["Version"]
    client.put_item(TableName=TABLE, Item=item)
    after = client.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True).get("Item")
    if not after:
        fail("get_item found nothing after the put")
    print("read back:", {name: next(iter(value.values())) for name, value in after.items()})
    if after.get("Name") != {"S": "Example"}:
        fail(f"read back {after}, not the item just put")
    version = int(after["Version"]["N"])
    expected = int(before["Version"]["N"]) + 1 if before and "Version" in before else 1
    if version != expected:
        fail(f"Version {version}, expected {expected}")
    print(f"version: {version}")
    return version


def show_audit(version):
    # Never through the sidecar: it answers AccessDeniedException to any request naming its
    # audit table.
    if AUDIT_ENDPOINT:
        client = boto3.client("dynamodb", endpoint_url=AUDIT_ENDPOINT, region_name=HOME_REGION)
    else:
        # DynamoDB Local accepts any key.
        client = boto3.client("dynamodb", endpoint_url=LOCAL_HOME_REGION, region_name=HOME_REGION, **DUMMY_KEYS)
    item_key = f"{TABLE}#{HOME_REGION}#test123#Demo"
    # The record is shipped from the sidecar's spool within milliseconds; wait a little for it.
    deadline = time.monotonic() + AUDIT_WAIT_SECONDS
    while True:
        records = client.query(
            TableName=AUDIT_TABLE,
            KeyConditionExpression="ItemKey = :k",
            ExpressionAttributeValues={":k": {"S": item_key}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if records and records[0].get("Version") == {"N": str(version)}:
            break
        if time.monotonic() > deadline:
            fail(f"no audit record of Version {version} under ItemKey {item_key} after {AUDIT_WAIT_SECONDS}s")
        time.sleep(0.2)
    r = {name: next(iter(value.values())) for name, value in records[0].items()}
    print(
        f"audit record: ItemKey {r['ItemKey']}, EventId {r['EventId']}: {r['Operation']} by {r['Principal']}"
        f" in {r['Region']} at {r['Timestamp']}, Version {r['Version']}, Outcome {r['Outcome']}"
    )


def main():
    client = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name="us-east-1", **DUMMY_KEYS)
    try:
        version = put_and_read(client)
        show_audit(version)
    except EndpointConnectionError as err:
        sys.exit(f"smoke.py: {err}; is the stack up? (deploy/local/up --detach)")
    print("smoke.py: OK")


if __name__ == "__main__":
    main()
