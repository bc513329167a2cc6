"""boto3 against the sidecar, as an application uses it: a client built with boto3's defaults
(retry mode and attempts, the botocore HTTP stack, x-amz-crc32 checked) and only the endpoint,
region and keys set. Runs the steps of tests/clients/scenario.json; tests/client_matrix.rs runs
it with the venv's Python (tests/clients/python/requirements.txt).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from common import Mismatch, Run, expect, expect_equal, normalized  # noqa: E402

ACCESS_KEY_ID = "AKIDPYTHONBOTO3"

run = Run("python")
d = run.definition


def client_for(endpoint):
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key="python-secret",
    )


client = client_for(run.endpoint)
region = client_for(run.region_endpoint)


def call(name, **params):
    """One call through the sidecar, counting the retries botocore made."""
    try:
        out = getattr(client, name)(**params)
    except ClientError as err:
        run.count(err.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        raise
    run.count(out["ResponseMetadata"].get("RetryAttempts", 0))
    return out


def get_item(key):
    return call("get_item", TableName=run.table, Key=key, ConsistentRead=True).get("Item")


def create_table_if_missing():
    try:
        call("describe_table", TableName=run.table)
        return {"created": False}
    except client.exceptions.ResourceNotFoundException:
        pass
    call(
        "create_table",
        TableName=run.table,
        AttributeDefinitions=[
            {"AttributeName": run.pk, "AttributeType": "S"},
            {"AttributeName": run.sk, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": run.pk, "KeyType": "HASH"},
            {"AttributeName": run.sk, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=run.table, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return {"created": True}


def put():
    out = call("put_item", TableName=run.table, Item=run.item())
    expect_equal(out["ResponseMetadata"]["HTTPStatusCode"], 200, "PutItem status")


def get():
    item = get_item(run.item_key())
    expect(item is not None, "GetItem: no Item for the key just put")
    expect_equal(normalized(item), normalized(run.item(version=1)), "GetItem Item")


def versioned_update():
    out = call(
        "update_item",
        TableName=run.table,
        Key=run.item_key(),
        UpdateExpression=f"SET #name = :name, {run.version} = :read",
        ExpressionAttributeNames={"#name": "Name"},
        ExpressionAttributeValues={":name": {"S": d["updated_name"]}, ":read": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    expect_equal(out["Attributes"]["Name"], {"S": d["updated_name"]}, "ALL_NEW Name")
    expect_equal(out["Attributes"][run.version], {"N": "2"}, "ALL_NEW Version")


def conditional_put_fails():
    try:
        call(
            "put_item",
            TableName=run.table,
            Item=run.item(version=1),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as err:
        meta = err.response["ResponseMetadata"]
        expect_equal(meta["HTTPStatusCode"], 400, "error status")
        expect_equal(meta.get("RetryAttempts", 0), 0, "retries of a failed condition")
        expect_equal(err.response.get("Item", {}).get(run.version), {"N": "2"}, "ALL_OLD Version")
        item = get_item(run.item_key())
        expect_equal(item["Name"], {"S": d["updated_name"]}, "Name after the failed put")
        expect_equal(item[run.version], {"N": "2"}, "Version after the failed put")
        return {"error": err.response["Error"]["Code"]}
    raise Mismatch("PutItem with a stale Version succeeded")


def stored_upstream():
    key = run.item_key()
    prefixed = {**key, run.pk: {"S": f"{run.home_region}#{key[run.pk]['S']}"}}
    stored = region.get_item(TableName=run.table, Key=prefixed, ConsistentRead=True).get("Item")
    expect(stored is not None, f"nothing stored under {prefixed[run.pk]['S']} in {run.region_endpoint}")
    expect_equal(stored[run.version], {"N": "2"}, "stored Version")
    plain = region.get_item(TableName=run.table, Key=key, ConsistentRead=True).get("Item")
    expect_equal(plain, None, "item stored under the plain key")
    return {"stored_key": prefixed[run.pk]["S"]}


def write_batch(requests):
    rounds = 0
    while requests:
        expect(rounds < d["batch_rounds"], f"BatchWriteItem still unprocessed after {rounds} rounds")
        requests = call("batch_write_item", RequestItems=requests).get("UnprocessedItems") or {}
        rounds += 1
    return rounds


def paginated_query():
    pk = run.id("query")
    categories = run.query_categories()
    page_size = d["query"]["page_size"]
    items = [{**run.key(pk, c), "Payload": {"S": run.payload(n)}} for n, c in enumerate(categories)]
    write_batch({run.table: [{"PutRequest": {"Item": item}} for item in items]})
    pages = client.get_paginator("query").paginate(
        TableName=run.table,
        KeyConditionExpression=f"{run.pk} = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
        PaginationConfig={"PageSize": page_size},
    )
    seen, sizes = [], []
    for page in pages:
        run.count(page["ResponseMetadata"].get("RetryAttempts", 0))
        expect(len(page["Items"]) <= page_size, f"Query page of {len(page['Items'])} items, Limit {page_size}")
        sizes.append(len(page["Items"]))
        for item in page["Items"]:
            n = len(seen)
            expect(n < len(items), "Query returned more items than were written")
            expect_equal(item, {**items[n], run.version: {"N": "1"}}, f"Query item {n} (order, exactly once)")
            seen.append(item[run.sk]["S"])
        if len(sizes) == 1:
            run.checkpoint(d["pause_point"])
    expect_equal(len(seen), len(items), "Query items in all pages")
    expect(len(sizes) >= len(items) // page_size, f"Query came back in {len(sizes)} pages")
    return {"items": len(seen), "pages": sizes}


def batch_write_get():
    keys = [run.key(run.id("batch"), f"b-{n}") for n in range(d["batch"]["items"])]
    items = [{**k, "Index": {"N": str(n)}} for n, k in enumerate(keys)]
    write_rounds = write_batch({run.table: [{"PutRequest": {"Item": item}} for item in items]})
    pending = {run.table: {"Keys": keys, "ConsistentRead": True}}
    got, get_rounds = [], 0
    while pending:
        expect(get_rounds < d["batch_rounds"], f"BatchGetItem still unprocessed after {get_rounds} rounds")
        out = call("batch_get_item", RequestItems=pending)
        got.extend(out.get("Responses", {}).get(run.table, []))
        pending = out.get("UnprocessedKeys") or {}
        get_rounds += 1
    got.sort(key=lambda item: int(item["Index"]["N"]))
    expect_equal(got, [{**item, run.version: {"N": "1"}} for item in items], "BatchGetItem items")
    return {"items": len(got), "write_rounds": write_rounds, "get_rounds": get_rounds}


def transaction():
    first = {**run.key(run.id("tx"), "one"), "Name": {"S": "Hammer"}}
    second = {**run.key(run.id("tx"), "two"), "Name": {"S": "Saw"}}
    call(
        "transact_write_items",
        TransactItems=[
            {"Put": {"TableName": run.table, "Item": first}},
            {"Put": {"TableName": run.table, "Item": second}},
            {
                "ConditionCheck": {
                    "TableName": run.table,
                    "Key": run.item_key(),
                    "ConditionExpression": f"attribute_exists({run.pk})",
                }
            },
        ],
    )
    out = call(
        "transact_get_items",
        TransactItems=[
            {"Get": {"TableName": run.table, "Key": run.key(run.id("tx"), "one")}},
            {"Get": {"TableName": run.table, "Key": run.key(run.id("tx"), "two")}},
        ],
    )
    expect_equal(
        [r.get("Item") for r in out["Responses"]],
        [{**first, run.version: {"N": "1"}}, {**second, run.version: {"N": "1"}}],
        "TransactGetItems items",
    )
    return {"items": len(out["Responses"])}


def transaction_cancelled():
    try:
        call(
            "transact_write_items",
            TransactItems=[
                {"Put": {"TableName": run.table, "Item": {**run.key(run.id("tx"), "three"), "Name": {"S": "Drill"}}}},
                {
                    "ConditionCheck": {
                        "TableName": run.table,
                        "Key": run.item_key(),
                        "ConditionExpression": f"attribute_not_exists({run.pk})",
                    }
                },
            ],
        )
    except client.exceptions.TransactionCanceledException as err:
        codes = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
        expect_equal(codes, ["None", "ConditionalCheckFailed"], "CancellationReasons codes")
        expect_equal(get_item(run.key(run.id("tx"), "three")), None, "item of the cancelled transaction")
        return {"error": err.response["Error"]["Code"], "reasons": codes}
    raise Mismatch("TransactWriteItems with a failing ConditionCheck succeeded")


def delete():
    out = call(
        "delete_item",
        TableName=run.table,
        Key=run.item_key(),
        ConditionExpression=f"{run.version} = :v",
        ExpressionAttributeValues={":v": {"N": "2"}},
        ReturnValues="ALL_OLD",
    )
    expect_equal(out.get("Attributes", {}).get(run.version), {"N": "2"}, "DeleteItem ALL_OLD Version")
    expect_equal(get_item(run.item_key()), None, "GetItem after DeleteItem")


def audit_query():
    """The Query of the item's audit records, as either endpoint takes it."""
    return {
        "TableName": run.audit_table,
        "KeyConditionExpression": "ItemKey = :k",
        "ExpressionAttributeValues": {":k": {"S": run.audit_item_key()}},
        "ConsistentRead": True,
    }


def audit_history():
    # Straight from the region: the sidecar refuses its audit table (audit_refused).
    records = run.wait_for_audit(lambda: region.query(**audit_query())["Items"])
    return {"regions": run.check_audit(records, ACCESS_KEY_ID)}


def audit_refused():
    try:
        call("query", **audit_query())
    except ClientError as err:
        code = err.response["Error"]["Code"]
        expect_equal(code, "AccessDeniedException", "error code")
        meta = err.response["ResponseMetadata"]
        expect_equal(meta["HTTPStatusCode"], 400, "error status")
        expect_equal(meta.get("RetryAttempts", 0), 0, "retries of a refusal")
        return {"error": code}
    raise Mismatch("Query of the audit table through the sidecar succeeded")


run.run(
    {
        "create_table_if_missing": create_table_if_missing,
        "put": put,
        "get": get,
        "versioned_update": versioned_update,
        "conditional_put_fails": conditional_put_fails,
        "stored_upstream": stored_upstream,
        "paginated_query": paginated_query,
        "batch_write_get": batch_write_get,
        "transaction": transaction,
        "transaction_cancelled": transaction_cancelled,
        "delete": delete,
        "audit_history": audit_history,
        "audit_refused": audit_refused,
    },
    done_extra=lambda: {"boto3": boto3.__version__},
)
