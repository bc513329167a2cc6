"""What travels in the load harness: the canned region's answers and the clients' requests.

The canned region (nginx, see stack.py) answers by `X-Amz-Target` alone, with these fixed
bodies; the clients (wrk, oha) send these requests. Both sides use the table the sidecar
config manages (GlobalCatalog: ItemID/Category, `key_prefix = "{region}#"`, versioned), so
the sidecar does its whole job on every request: parse, prefix the key, inject the version
condition, re-sign, strip the prefix from the answer, recompute crc32.
"""

import json
import zlib

TABLE = "GlobalCatalog"
HOME_REGION = "us-east-1"
TARGET_PREFIX = "DynamoDB_20120810."

# The attribute size of the padding: many attributes of modest size, as real items carry,
# so the sidecar's parser walks a realistic number of values rather than one long string.
_PAD_VALUE_CHARS = 100


def _compact(value):
    return json.dumps(value, separators=(",", ":"))


def _padded_item(partition_key, size_bytes):
    """An item whose JSON is about `size_bytes`, with the GlobalCatalog key and padding."""
    item = {"ItemID": {"S": partition_key}, "Category": {"S": "c"}}
    i = 0
    while len(_compact(item)) < size_bytes:
        item[f"Attr{i:05d}"] = {"S": f"v{i:05d}-" + "x" * _PAD_VALUE_CHARS}
        i += 1
    return item


def crc32(body: bytes) -> int:
    """The `x-amz-crc32` value DynamoDB sends: CRC-32 (IEEE) of the body, in decimal."""
    return zlib.crc32(body) & 0xFFFFFFFF


# --- The canned region's answers -------------------------------------------------------

def _get_item_answer():
    # The stored partition key carries the home region's prefix, as the sidecar wrote it;
    # the sidecar strips it (and refuses an item of another namespace), so this also proves
    # the restore half of key_prefix runs.
    item = _padded_item(f"{HOME_REGION}#item-1", 1400)
    item["Version"] = {"N": "3"}
    return {"Item": item}


def _describe_table_answer():
    # The sidecar asks once at start for the key types of a prefixed table (src/schema.rs):
    # it needs KeySchema and AttributeDefinitions; the rest makes it look like DynamoDB's.
    return {
        "Table": {
            "TableName": TABLE,
            "TableStatus": "ACTIVE",
            "TableArn": f"arn:aws:dynamodb:{HOME_REGION}:123456789012:table/{TABLE}",
            "KeySchema": [
                {"AttributeName": "ItemID", "KeyType": "HASH"},
                {"AttributeName": "Category", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "ItemID", "AttributeType": "S"},
                {"AttributeName": "Category", "AttributeType": "S"},
            ],
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ItemCount": 0,
            "TableSizeBytes": 0,
            "CreationDateTime": 1767225600.0,
        }
    }


def canned_answers():
    """Operation -> answer body (bytes). Anything else gets `{}` (see stack.py)."""
    answers = {
        "GetItem": _get_item_answer(),
        # A put with auditing asks ReturnValues ALL_OLD; `{}` says there was no old item,
        # which the audit record takes as it is (docs/src/audit.md).
        "PutItem": {},
        # A BatchWriteItem on a versioned table reaches the region as one
        # TransactWriteItems (docs/src/optimistic-locking.md); the audit shipper's batches
        # (to the audit table, which has no policy) arrive as BatchWriteItem.
        "BatchWriteItem": {"UnprocessedItems": {}},
        "TransactWriteItems": {},
        "DescribeTable": _describe_table_answer(),
    }
    return {op: _compact(body).encode() for op, body in answers.items()}


# --- The clients' requests -------------------------------------------------------------

def get_item_request():
    return _compact({"TableName": TABLE, "Key": {"ItemID": {"S": "item-1"}, "Category": {"S": "c"}}}).encode()


def put_item_request(size_bytes):
    """A PutItem of about `size_bytes` (the whole request body), with no Version attribute:
    the sidecar then injects `attribute_not_exists(Version)` and stores Version = 1."""
    item = _padded_item("item-1", size_bytes - len('{"TableName":"GlobalCatalog","Item":}'))
    return _compact({"TableName": TABLE, "Item": item}).encode()


def batch_write_request(items, item_bytes=1000):
    """A BatchWriteItem of `items` puts of about `item_bytes` each, every key distinct
    (DynamoDB refuses a batch that names one item twice)."""
    puts = [{"PutRequest": {"Item": _padded_item(f"item-{i}", item_bytes)}} for i in range(items)]
    return _compact({"RequestItems": {TABLE: puts}}).encode()
