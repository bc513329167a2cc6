#!/usr/bin/env python3
"""Writes and reads items through GlobalScale with boto3, then shows the audit entry.

Start the local stack first (deploy/local/up --detach), then:

    .tools/venv/bin/python examples/smoke.py
    GLOBALSCALE_ENDPOINT=http://127.0.0.1:8001 python3 examples/smoke.py  # straight to a region

The only change an application makes to use GlobalScale is endpoint_url. The keys are
dummies on purpose: the sidecar re-signs every request with its own credentials.
"""

import os
import sys

try:
    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError
except ImportError:
    # Run under the repo's venv if this interpreter lacks boto3 and the venv has it.
    here = os.path.dirname(os.path.abspath(__file__))
    venv_python = os.path.join(here, "..", ".tools", "venv", "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(
        os.path.join(here, "..", ".tools", "venv")
    ):
        os.execv(venv_python, [venv_python, *sys.argv])
    sys.exit("smoke.py: boto3 is missing; run deploy/local/ensure-venv boto3, then .tools/venv/bin/python examples/smoke.py")

ENDPOINT = os.environ.get("GLOBALSCALE_ENDPOINT", "http://localhost:8000")
AUDIT_ENDPOINT = os.environ.get("GLOBALSCALE_AUDIT_ENDPOINT", ENDPOINT)
CLIENT_ARGS = dict(region_name="us-east-1", aws_access_key_id="app", aws_secret_access_key="app")

ITEM = {"ItemID": "test123", "Category": "Demo", "Name": "Example"}


def check(label, got, want):
    print(f"{label}: {got}")
    if got != want:
        sys.exit(f"smoke.py: FAIL: {label} returned {got!r}, expected {want!r}")


def with_client():
    print(f"== boto3 client API via {ENDPOINT}")
    client = boto3.client("dynamodb", endpoint_url=ENDPOINT, **CLIENT_ARGS)
    client.put_item(
        TableName="GlobalCatalog",
        Item={name: {"S": value} for name, value in ITEM.items()},
    )
    response = client.get_item(
        TableName="GlobalCatalog",
        Key={"ItemID": {"S": ITEM["ItemID"]}, "Category": {"S": ITEM["Category"]}},
        ConsistentRead=True,
    )
    got = {name: value["S"] for name, value in response.get("Item", {}).items()}
    check("get_item", got, ITEM)


def with_resource():
    print(f"== boto3 resource (Table) API via {ENDPOINT}")
    table = boto3.resource("dynamodb", endpoint_url=ENDPOINT, **CLIENT_ARGS).Table("GlobalCatalog")
    item = {**ITEM, "ItemID": "test123-resource", "Tags": ["local", "smoke"], "Price": 42}
    table.put_item(Item=item)
    response = table.get_item(
        Key={"ItemID": item["ItemID"], "Category": item["Category"]}, ConsistentRead=True
    )
    got = response.get("Item", {})
    # The resource API hands numbers back as Decimal.
    got = {k: int(v) if k == "Price" else v for k, v in got.items()}
    check("Table.get_item", got, item)


def show_audit():
    print(f"== audit entries for ItemKey {ITEM['ItemID']} in GlobalCatalog-audit via {AUDIT_ENDPOINT}")
    client = boto3.client("dynamodb", endpoint_url=AUDIT_ENDPOINT, **CLIENT_ARGS)
    try:
        response = client.query(
            TableName="GlobalCatalog-audit",
            KeyConditionExpression="ItemKey = :k",
            ExpressionAttributeValues={":k": {"S": ITEM["ItemID"]}},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        print("the GlobalCatalog-audit table does not exist here (deploy/local/up creates it); skipping the audit check")
        return
    if not response["Items"]:
        print(f"no audit entry for {ITEM['ItemID']}: audit mirroring is not enabled yet")
    for entry in response["Items"]:
        print(entry)


def main():
    try:
        with_client()
        with_resource()
        show_audit()
    except EndpointConnectionError as err:
        sys.exit(f"smoke.py: {err}; is the stack up? (deploy/local/up --detach)")
    print("smoke.py: OK")


if __name__ == "__main__":
    main()
