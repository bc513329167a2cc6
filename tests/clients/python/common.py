"""What the Python-driven clients of tests/clients/ share: boto3 (python/scenario.py) and the
AWS CLI (cli/scenario.py). It reads the one scenario definition (tests/clients/scenario.json),
the environment the Rust side sets, and runs the client's steps in the definition's order,
printing one JSON line per step as the definition describes.

Nothing here talks to DynamoDB: each client does that with its own tool.
"""

import json
import os
import sys
import time
from pathlib import Path

SCENARIO_FILE = Path(__file__).resolve().parent.parent / "scenario.json"


class Mismatch(Exception):
    """The sidecar answered, but not what the step expected."""


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def expect_equal(actual, expected, what):
    expect(actual == expected, f"{what}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


def emit(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Run:
    """One run of the scenario: its definition, its environment and the keys it writes."""

    def __init__(self, client_name, retries_visible=True):
        self.retries_visible = retries_visible
        self.definition = json.loads(SCENARIO_FILE.read_text())
        self.client_name = client_name
        self.endpoint = required("ENDPOINT")
        self.region_endpoint = required("REGION_ENDPOINT")
        self.home_region = required("HOME_REGION")
        self.run_id = os.environ.get("RUN_ID") or f"{os.getpid()}-{int(time.time() * 1000)}"
        self.pause_at = os.environ.get("PAUSE_AT", "")
        d = self.definition
        self.table = d["table"]
        self.audit_table = d["audit_table"]
        self.pk, self.sk, self.version = d["partition_key"], d["sort_key"], d["version_attribute"]
        self.calls = 0
        self.retries = 0

    def id(self, name):
        return f"{self.client_name}-{self.run_id}-{name}"

    def key(self, item_id, category):
        return {self.pk: {"S": item_id}, self.sk: {"S": category}}

    def item_key(self):
        return self.key(self.id("item"), self.definition["item"][self.sk]["S"])

    def item(self, version=None):
        """The scenario's item with its key, and a Version when given."""
        item = {**self.definition["item"], self.pk: {"S": self.id("item")}}
        if version is not None:
            item[self.version] = {"N": str(version)}
        return item

    def query_categories(self):
        return [f"c-{n:03d}" for n in range(self.definition["query"]["items"])]

    def payload(self, n):
        """About a kilobyte per item, different per item, so a page from the wrong place shows."""
        size = self.definition["query"]["payload_bytes"]
        return f"{n:04d}:".ljust(size, chr(97 + n % 26))

    def audit_item_key(self):
        """The audit table's ItemKey of the item: <table>#<stored partition key>#<sort key>."""
        category = self.definition["item"][self.sk]["S"]
        return f"{self.table}#{self.home_region}#{self.id('item')}#{category}"

    def count(self, retries=0):
        self.calls += 1
        if self.retries_visible:
            self.retries += retries

    def checkpoint(self, name):
        """The pause point: tell the Rust side, and wait for its go-ahead on stdin."""
        if name != self.pause_at:
            return
        emit({"pause": name})
        if not sys.stdin.readline():
            raise Mismatch(f"stdin closed at the pause point {name}")

    def run(self, steps, done_extra=None):
        """Runs `steps` (name -> function) in the definition's order; exits 1 on a failure."""
        names = [s["name"] for s in self.definition["steps"]]
        missing = [n for n in names if n not in steps]
        if missing:
            fail(f"{self.client_name} implements no step {missing}")
        for name in names:
            self.calls, self.retries = 0, 0 if self.retries_visible else None
            try:
                result = steps[name]() or {}
            except Exception as err:  # noqa: BLE001: any failure is reported with its step
                what = str(err) if isinstance(err, Mismatch) else f"{type(err).__name__}: {err}"
                emit({"step": name, "ok": False, "calls": self.calls, "retries": self.retries, "error": what})
                fail(f"step {name} failed against {self.endpoint}: {what}")
            emit({"step": name, "ok": True, "calls": self.calls, "retries": self.retries, **result})
        emit({"step": "done", "ok": True, "steps": len(names), **(done_extra() if done_extra else {})})

    def wait_for_audit(self, query):
        """Calls query() (the records of the item, oldest first) until there are 3, or fails."""
        deadline = time.monotonic() + self.definition["audit_wait_seconds"]
        while True:
            records = query()
            if len(records) >= 3 or time.monotonic() > deadline:
                return records
            time.sleep(0.2)

    def check_audit(self, records, principal):
        """The item's history as the definition says; returns the regions that served it."""
        s = lambda record, name: record.get(name, {}).get("S")  # noqa: E731
        expect_equal([s(r, "Operation") for r in records], ["PutItem", "UpdateItem", "DeleteItem"], "audit Operations")
        expect_equal([r.get("Version", {}).get("N") for r in records], ["1", "2", "2"], "audit Versions")
        expect_equal([s(r, "Outcome") for r in records], ["accepted"] * 3, "audit Outcomes")
        expect_equal([s(r, "Principal") for r in records], [principal] * 3, "audit Principals")
        expect_equal(
            [r.get("Key") for r in records], [{"M": self.item_key()}] * 3, "audit Keys (as the client sees them)"
        )
        return [s(r, "Region") for r in records]


def required(name):
    value = os.environ.get(name)
    if not value:
        fail(f"{name} is not set (see tests/clients/scenario.json)")
    return value


def fail(message):
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(1)


def without_version(item, version_attribute):
    return {k: v for k, v in item.items() if k != version_attribute}


def normalized(item):
    """An item with its sets sorted: DynamoDB returns sets in no particular order."""
    out = {}
    for name, value in item.items():
        (kind, inner), = value.items()
        if kind in ("SS", "NS", "BS"):
            out[name] = {kind: sorted(inner)}
        else:
            out[name] = value
    return out
