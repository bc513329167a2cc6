"""The AWS CLI against the sidecar, as a shell script or an operator uses it: every call is one
`aws dynamodb ...` process with the CLI's defaults (its retry mode and attempts, its own
pagination) and only --endpoint-url, the region and the keys set. Python only drives it:
builds the arguments, reads the JSON the CLI prints and its exit status and error text.

Runs the steps of tests/clients/scenario.json; tests/client_matrix.rs runs it with AWS_CLI set to
the CLI of the venv (tests/clients/python/requirements.txt). The CLI says nothing of its retries,
so the step lines carry "retries": null.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from common import Mismatch, Run, expect, expect_equal, normalized  # noqa: E402

ACCESS_KEY_ID = "AKIDAWSCLI"
AWS = os.environ.get("AWS_CLI", "aws")
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": "cli-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_PAGER": "",
}

run = Run("cli", retries_visible=False)
d = run.definition


class CliError(Exception):
    """`aws` exited non-zero: its status and what it printed on stderr."""

    def __init__(self, status, stderr):
        super().__init__(f"aws exited {status}: {stderr.strip()}")
        self.status = status
        self.stderr = stderr

    def code(self):
        """The error code in the CLI's `An error occurred (Code) when calling ...` line."""
        marker = "An error occurred ("
        start = self.stderr.find(marker)
        if start < 0:
            return None
        start += len(marker)
        return self.stderr[start : self.stderr.find(")", start)]


def aws(command, *args, endpoint=None, **params):
    """`aws dynamodb <command> --endpoint-url E --output json` plus --kebab-case params (dicts
    and lists as JSON, True as a bare flag); the parsed JSON it printed."""
    argv = [AWS, "dynamodb", command, "--endpoint-url", endpoint or run.endpoint, "--output", "json", *args]
    for name, value in params.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, value if isinstance(value, str) else json.dumps(value)]
    if endpoint is None:
        run.count()
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise CliError(done.returncode, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def expect_error(code, error):
    expect(error.status != 0, "the CLI exited 0")
    expect_equal(error.code(), code, f"the CLI's error code (stderr: {error.stderr.strip()})")


def get_item(key):
    return aws("get-item", table_name=run.table, key=key, consistent_read=True).get("Item")


def create_table_if_missing():
    try:
        aws("describe-table", table_name=run.table)
        return {"created": False}
    except CliError as err:
        expect_error("ResourceNotFoundException", err)
    aws(
        "create-table",
        table_name=run.table,
        attribute_definitions=[
            {"AttributeName": run.pk, "AttributeType": "S"},
            {"AttributeName": run.sk, "AttributeType": "S"},
        ],
        key_schema=[{"AttributeName": run.pk, "KeyType": "HASH"}, {"AttributeName": run.sk, "KeyType": "RANGE"}],
        billing_mode="PAY_PER_REQUEST",
    )
    aws("wait", "table-exists", table_name=run.table)
    return {"created": True}


def put():
    aws("put-item", table_name=run.table, item=run.item())


def get():
    item = get_item(run.item_key())
    expect(item is not None, "get-item: no Item for the key just put")
    expect_equal(normalized(item), normalized(run.item(version=1)), "get-item Item")


def versioned_update():
    out = aws(
        "update-item",
        table_name=run.table,
        key=run.item_key(),
        update_expression=f"SET #name = :name, {run.version} = :read",
        expression_attribute_names={"#name": "Name"},
        expression_attribute_values={":name": {"S": d["updated_name"]}, ":read": {"N": "1"}},
        return_values="ALL_NEW",
    )
    expect_equal(out["Attributes"]["Name"], {"S": d["updated_name"]}, "ALL_NEW Name")
    expect_equal(out["Attributes"][run.version], {"N": "2"}, "ALL_NEW Version")


def conditional_put_fails():
    try:
        aws(
            "put-item",
            table_name=run.table,
            item=run.item(version=1),
            return_values_on_condition_check_failure="ALL_OLD",
        )
    except CliError as err:
        expect_error("ConditionalCheckFailedException", err)
        item = get_item(run.item_key())
        expect_equal(item["Name"], {"S": d["updated_name"]}, "Name after the failed put")
        expect_equal(item[run.version], {"N": "2"}, "Version after the failed put")
        return {"error": err.code(), "exit_status": err.status}
    raise Mismatch("put-item with a stale Version succeeded")


def stored_upstream():
    key = run.item_key()
    prefixed = {**key, run.pk: {"S": f"{run.home_region}#{key[run.pk]['S']}"}}
    direct = run.region_endpoint
    stored = aws("get-item", endpoint=direct, table_name=run.table, key=prefixed, consistent_read=True).get("Item")
    expect(stored is not None, f"nothing stored under {prefixed[run.pk]['S']} in {direct}")
    expect_equal(stored[run.version], {"N": "2"}, "stored Version")
    plain = aws("get-item", endpoint=direct, table_name=run.table, key=key, consistent_read=True).get("Item")
    expect_equal(plain, None, "item stored under the plain key")
    return {"stored_key": prefixed[run.pk]["S"]}


def write_batch(requests):
    rounds = 0
    while requests:
        expect(rounds < d["batch_rounds"], f"batch-write-item still unprocessed after {rounds} rounds")
        requests = aws("batch-write-item", request_items=requests).get("UnprocessedItems") or {}
        rounds += 1
    return rounds


def paginated_query():
    pk = run.id("query")
    page_size = d["query"]["page_size"]
    items = [{**run.key(pk, c), "Payload": {"S": run.payload(n)}} for n, c in enumerate(run.query_categories())]
    write_batch({run.table: [{"PutRequest": {"Item": item}} for item in items]})
    # The CLI's own pagination, a page per call: --page-size is the Limit it sends, --max-items
    # stops after one page, and --starting-token resumes from the NextToken it printed.
    seen, sizes, token = [], [], None
    while True:
        resume = ["--starting-token", token] if token else []
        page = aws(
            "query",
            *resume,
            table_name=run.table,
            key_condition_expression=f"{run.pk} = :pk",
            expression_attribute_values={":pk": {"S": pk}},
            consistent_read=True,
            page_size=str(page_size),
            max_items=str(page_size),
        )
        expect(len(page["Items"]) <= page_size, f"query page of {len(page['Items'])} items, Limit {page_size}")
        sizes.append(len(page["Items"]))
        for item in page["Items"]:
            n = len(seen)
            expect(n < len(items), "query returned more items than were written")
            expect_equal(item, item_with_version(items[n]), f"query item {n} (order, exactly once)")
            seen.append(item[run.sk]["S"])
        if len(sizes) == 1:
            run.checkpoint(d["pause_point"])
        token = page.get("NextToken")
        if not token:
            break
        expect(len(sizes) <= len(items), "query pages never end")
    expect_equal(len(seen), len(items), "query items in all pages")
    expect(len(sizes) >= len(items) // page_size, f"query came back in {len(sizes)} pages")
    return {"items": len(seen), "pages": sizes}


def item_with_version(item, version=1):
    return {**item, run.version: {"N": str(version)}}


def batch_write_get():
    keys = [run.key(run.id("batch"), f"b-{n}") for n in range(d["batch"]["items"])]
    items = [{**k, "Index": {"N": str(n)}} for n, k in enumerate(keys)]
    write_rounds = write_batch({run.table: [{"PutRequest": {"Item": item}} for item in items]})
    pending = {run.table: {"Keys": keys, "ConsistentRead": True}}
    got, get_rounds = [], 0
    while pending:
        expect(get_rounds < d["batch_rounds"], f"batch-get-item still unprocessed after {get_rounds} rounds")
        out = aws("batch-get-item", request_items=pending)
        got.extend(out.get("Responses", {}).get(run.table, []))
        pending = out.get("UnprocessedKeys") or {}
        get_rounds += 1
    got.sort(key=lambda item: int(item["Index"]["N"]))
    expect_equal(got, [item_with_version(item) for item in items], "batch-get-item items")
    return {"items": len(got), "write_rounds": write_rounds, "get_rounds": get_rounds}


def transaction():
    first = {**run.key(run.id("tx"), "one"), "Name": {"S": "Hammer"}}
    second = {**run.key(run.id("tx"), "two"), "Name": {"S": "Saw"}}
    check = {"TableName": run.table, "Key": run.item_key(), "ConditionExpression": f"attribute_exists({run.pk})"}
    aws(
        "transact-write-items",
        transact_items=[
            {"Put": {"TableName": run.table, "Item": first}},
            {"Put": {"TableName": run.table, "Item": second}},
            {"ConditionCheck": check},
        ],
    )
    out = aws(
        "transact-get-items",
        transact_items=[
            {"Get": {"TableName": run.table, "Key": run.key(run.id("tx"), "one")}},
            {"Get": {"TableName": run.table, "Key": run.key(run.id("tx"), "two")}},
        ],
    )
    got = [r.get("Item") for r in out["Responses"]]
    expect_equal(got, [item_with_version(first), item_with_version(second)], "transact-get-items items")
    return {"items": len(got)}


def transaction_cancelled():
    third = {**run.key(run.id("tx"), "three"), "Name": {"S": "Drill"}}
    check = {"TableName": run.table, "Key": run.item_key(), "ConditionExpression": f"attribute_not_exists({run.pk})"}
    try:
        aws("transact-write-items", transact_items=[{"Put": {"TableName": run.table, "Item": third}}, {"ConditionCheck": check}])
    except CliError as err:
        expect_error("TransactionCanceledException", err)
        # The CLI prints the cancellation reasons in the message only.
        expect("[None, ConditionalCheckFailed]" in err.stderr, f"cancellation reasons in: {err.stderr.strip()}")
        expect_equal(get_item(run.key(run.id("tx"), "three")), None, "item of the cancelled transaction")
        return {"error": err.code(), "exit_status": err.status}
    raise Mismatch("transact-write-items with a failing ConditionCheck succeeded")


def delete():
    out = aws(
        "delete-item",
        table_name=run.table,
        key=run.item_key(),
        condition_expression=f"{run.version} = :v",
        expression_attribute_values={":v": {"N": "2"}},
        return_values="ALL_OLD",
    )
    expect_equal(out.get("Attributes", {}).get(run.version), {"N": "2"}, "delete-item ALL_OLD Version")
    expect_equal(get_item(run.item_key()), None, "get-item after delete-item")


def query_audit(endpoint=None):
    """`aws dynamodb query` of the item's audit records: at the sidecar, or at `endpoint`."""
    return aws(
        "query",
        endpoint=endpoint,
        table_name=run.audit_table,
        key_condition_expression="ItemKey = :k",
        expression_attribute_values={":k": {"S": run.audit_item_key()}},
        consistent_read=True,
    )["Items"]


def audit_history():
    # Straight from the region: the sidecar refuses its audit table (audit_refused).
    records = run.wait_for_audit(lambda: query_audit(endpoint=run.region_endpoint))
    return {"regions": run.check_audit(records, ACCESS_KEY_ID)}


def audit_refused():
    try:
        query_audit()
    except CliError as err:
        expect_error("AccessDeniedException", err)
        return {"error": err.code(), "exit_status": err.status}
    raise Mismatch("query of the audit table through the sidecar succeeded")


def version():
    done = subprocess.run([AWS, "--version"], env=ENV, capture_output=True, text=True, check=False)
    return {"aws_cli": (done.stdout or done.stderr).strip()}


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
    done_extra=version,
)
