"""Helpers for deploy/local/up: probe an HTTP endpoint, create the example tables.

    python localctl.py probe URL [--expect STATUS]
    python localctl.py create-tables ENDPOINT
    python localctl.py wal-store DIR

`probe` exits 0 once URL answers (with STATUS, when given) and 1 otherwise; it makes
one attempt, and up loops around it so it can watch the process it waits for.
`create-tables` needs boto3 and creates what is missing, leaving existing tables alone.
`wal-store` puts the store that `-sharedDb -dbPath DIR` opens in SQLite's write-ahead-log
mode, before any DynamoDB Local opens it.
"""

import argparse
import os
import sqlite3
import sys
import urllib.error
import urllib.request

# The tables the examples use; GlobalCatalog matches [[tables]] in config/local.toml.
TABLES = [
    {"TableName": "GlobalCatalog", "hash": "ItemID", "range": "Category"},
    {"TableName": "GlobalCatalog-audit", "hash": "ItemKey", "range": "EventId"},
]

# DynamoDB Local accepts any credentials; these keep boto3 from looking for real ones.
DUMMY_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def probe(url, expect):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError):
        return 1
    return 0 if expect is None or status == expect else 1


def ready(endpoint):
    """0 when DynamoDB Local answers ListTables, 2 when it answers with a server error
    (a process whose start lost a race for the shared database stays broken), 1 when
    nothing answers yet."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError, EndpointConnectionError

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        **DUMMY_CREDENTIALS,
    )
    try:
        client.list_tables(Limit=1)
        return 0
    except ClientError as err:
        return 2 if err.response["ResponseMetadata"]["HTTPStatusCode"] >= 500 else 1
    except (EndpointConnectionError, OSError, Exception):  # noqa: BLE001 - not up yet
        return 1


def create_tables(endpoint):
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", **DUMMY_CREDENTIALS
    )
    for table in TABLES:
        name = table["TableName"]
        try:
            client.describe_table(TableName=name)
            print(f"table {name}: exists")
            continue
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": table["hash"], "AttributeType": "S"},
                {"AttributeName": table["range"], "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": table["hash"], "KeyType": "HASH"},
                {"AttributeName": table["range"], "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        print(f"table {name}: created ({table['hash']} S hash, {table['range']} S range)")
    return 0


def wal_store(directory):
    """DynamoDB Local sets no busy timeout, so with SQLite's default rollback journal a read in
    one region's process that meets another process's write fails at once (a 500). In WAL
    mode readers never wait for a writer; the mode is stored in the file and DynamoDB Local
    keeps it."""
    path = os.path.join(directory, "shared-local-instance.db")
    try:
        with sqlite3.connect(path, timeout=0) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.OperationalError as e:
        # A region still running from an earlier `up --detach` holds the store.
        print(f"store {path}: left as it is ({e})")
        return 0
    print(f"store {path}: journal mode {mode}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    probe_cmd = commands.add_parser("probe")
    probe_cmd.add_argument("url")
    probe_cmd.add_argument("--expect", type=int)
    ready_cmd = commands.add_parser("ready")
    ready_cmd.add_argument("endpoint")
    tables_cmd = commands.add_parser("create-tables")
    tables_cmd.add_argument("endpoint")
    wal_cmd = commands.add_parser("wal-store")
    wal_cmd.add_argument("dir")
    args = parser.parse_args()
    if args.command == "probe":
        return probe(args.url, args.expect)
    if args.command == "ready":
        return ready(args.endpoint)
    if args.command == "wal-store":
        return wal_store(args.dir)
    return create_tables(args.endpoint)


if __name__ == "__main__":
    sys.exit(main())
