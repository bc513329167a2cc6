"""The audit phase: what auditing costs a PutItem when the region takes DynamoDB's time.

For each delay (2 ms, then at once, by default): the delayed canned region
(benches/canned_region.rs, a process of its own), and in front of it the two sidecars of the
main phase, auditing off and on (the spool in the run's temp dir: its filesystem is
printed). wrk drives the harness's PutItem closed loop, 8 connections, in rounds alternating
off/on (which goes first alternates too); after each audited run the shipper is given time
to empty the spool before anything else runs, so shipping never falls into an unaudited
run. Around each audited run: the sidecar's /metrics (records per fsync, the largest fsync
group, the backlog left, records shipped) and the region's /lags (spool-to-region shipping
lag). One direct run per delay shows what the region itself answers in.

Drained means every settled record shipped (shipped + failed caught up with spooled), not
a backlog of 0: a write whose client hangs up while the region works (wrk closing its
connections at the end of each run) leaves its intent unsettled in the spool, counted in
the backlog until the sidecar's next start. Those are reported as stranded intents.
"""

import http.client
import json
import sys
import time
from pathlib import Path

import bodies
import drive
import report
import stack

# What the canned region must answer as nginx's does (bodies.py): every operation the audit
# phase's sidecars send it. GetItem is not among them: the phase drives PutItem only, and
# the sidecar's probe takes `{}` (no item) as a healthy answer.
SAME_AS_NGINX = ("PutItem", "BatchWriteItem", "TransactWriteItems", "DescribeTable")
# How long the shipper gets to empty the spool after an audited run.
DRAIN_TIMEOUT_S = 60.0


def _get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def scrape(admin_port):
    """The audit counters of an audited sidecar's /metrics."""
    wanted = {
        'globalscale_audit_records_total{outcome="spooled"}': "spooled",
        'globalscale_audit_records_total{outcome="shipped"}': "shipped",
        'globalscale_audit_records_total{outcome="failed"}': "failed",
        "globalscale_audit_backlog": "backlog",
        "globalscale_audit_spool_fsyncs_total": "fsyncs",
        "globalscale_audit_spool_largest_group": "largest_group",
    }
    found = {}
    for line in _get(admin_port, "/metrics").splitlines():
        series, _, value = line.rpartition(" ")
        if series in wanted:
            found[wanted[series]] = float(value)
    missing = [name for name in wanted.values() if name not in found]
    if missing:
        raise RuntimeError(f"the audited sidecar's /metrics lacks {', '.join(missing)}")
    return found


def wait_drained(admin_port, timeout=DRAIN_TIMEOUT_S):
    """Polls until every settled record is shipped: (counters, seconds it took, drained)."""
    started = time.monotonic()
    while True:
        counters = scrape(admin_port)
        took = time.monotonic() - started
        drained = counters["shipped"] + counters["failed"] >= counters["spooled"]
        if drained or took > timeout:
            return counters, took, drained
        time.sleep(0.005)


def lags(region_port):
    """The region's shipping lags since the last call (and forgets them)."""
    return json.loads(_get(region_port, "/lags"))


def _check_answers(region_port):
    """The Rust region answers every operation the sidecars send it as nginx does."""
    nginx = bodies.canned_answers()
    for operation in SAME_AS_NGINX:
        status, headers, body = drive.post(region_port, operation, b"{}")
        if status != 200 or json.loads(body) != json.loads(nginx[operation]):
            raise RuntimeError(f"canned region answered {operation} with {status} {body[:300]!r}, "
                               f"not nginx's {nginx[operation][:300]!r}")
        if headers.get("x-amz-crc32") != str(bodies.crc32(body)) or "x-amzn-requestid" not in headers:
            raise RuntimeError(f"canned region's {operation} headers: {headers}")


def _smoke(targets, load):
    body = Path(load.body_path).read_bytes()
    for t in targets:
        status, headers, answer = drive.post(t["port"], load.operation, body)
        if status != 200 or headers.get("x-amz-crc32") != str(bodies.crc32(answer)):
            raise RuntimeError(f"{t['name']} answered {load.label} with {status}, "
                               f"x-amz-crc32 {headers.get('x-amz-crc32')}: {answer[:500]!r}{t['log']()}")


def _measure_audited(t, load, args, region_port):
    """One audited run, with the spool's and the shipper's figures around its measured part."""
    start = scrape(t["admin_port"])
    if args.warmup > 0:
        drive.measure(t, load, args.warmup, 0)
    before = scrape(t["admin_port"])
    lags(region_port)
    result = drive.measure(t, load, args.duration, 0)
    after = scrape(t["admin_port"])
    drained, took, emptied = wait_drained(t["admin_port"])
    lag = lags(region_port)
    spooled = after["spooled"] - before["spooled"]
    fsyncs = after["fsyncs"] - before["fsyncs"]
    result.update(
        spooled=spooled, fsyncs=fsyncs, records_per_fsync=spooled / fsyncs if fsyncs else None,
        largest_group=after["largest_group"], backlog_at_end=after["backlog"],
        shipped=drained["shipped"] - before["shipped"], failed=drained["failed"] - before["failed"],
        stranded=drained["backlog"] - start["backlog"], drain_s=took, kept_up=emptied,
        lag_records=lag["count"], lag_batches=lag["batches"],
        lag_p50_ms=lag["p50_ms"], lag_p99_ms=lag["p99_ms"], lag_max_ms=lag["max_ms"],
    )
    return result


def _measure_delay(args, delay_us, binaries, workdir, on_run, processes):
    """Starts the region and both sidecars for one delay in `processes`, and measures."""
    spool_dir = workdir / f"audit-spool-{delay_us}us"
    ports = stack.free_ports(5)
    region = processes.add(stack.start_canned_region(binaries["canned_region"], workdir, ports[0], delay_us))
    _check_answers(ports[0])
    off_p = processes.add(stack.start_sidecar(f"sidecar-{delay_us}us", binaries["sidecar"], workdir,
                                              ports[1], ports[2], ports[0]))
    on_p = processes.add(stack.start_sidecar(f"sidecar-audit-{delay_us}us", binaries["sidecar"], workdir,
                                             ports[3], ports[4], ports[0], spool_dir=spool_dir))

    def target(name, port, process):
        return {"name": name, "port": port, "url": f"http://127.0.0.1:{port}/", "upstream_pids_fn": region.pids,
                "pids_fn": process.pids if process else (lambda: []),
                "log": (lambda: f"\n--- {process.log_path} ---\n{process.log_tail()}") if process else (lambda: "")}
    direct, off, on = target("direct", ports[0], None), target("sidecar", ports[1], off_p), \
        target("sidecar-audit", ports[3], on_p)
    on["admin_port"] = ports[4]
    load = drive.Load("PutItem", bodies.put_item_request(1400), workdir, label="PutItem")
    _smoke([direct, off, on], load)
    wait_drained(ports[4])
    print(f"load: audit phase, region answering after {delay_us} us; spool on "
          f"{report.filesystem(spool_dir)}", file=sys.stderr)

    def record(result, round_):
        result["delay_us"] = delay_us
        on_run(result, "audit", round_)
    record(drive.measure(direct, load, args.duration, args.warmup), 0)
    for round_ in range(args.audit_rounds):
        order = (off, on) if round_ % 2 == 0 else (on, off)
        for t in order:
            if t is on:
                record(_measure_audited(on, load, args, ports[0]), round_)
            else:
                record(drive.measure(off, load, args.duration, args.warmup), round_)
    return report.filesystem(spool_dir)


def measure(args, binaries, workdir, on_run):
    """Every delay of `args.audit_delays_us`, one after the other: what results.json keeps
    of the phase besides its runs."""
    filesystems = {}
    stacks = []
    try:
        for delay_us in args.audit_delays_us:
            if stacks:
                # Stopping: the audited sidecar spends its drain time (about 25 s) on the
                # stranded intents. It waits idle, so the next delay need not wait for it.
                stacks[-1].terminate()
            stacks.append(stack.Stack())
            filesystems[delay_us] = _measure_delay(args, delay_us, binaries, workdir, on_run, stacks[-1])
    finally:
        for processes in stacks:
            processes.close()
    return {
        "delays_us": args.audit_delays_us, "rounds": args.audit_rounds,
        "region": f"{binaries['canned_region']} (benches/canned_region.rs: 1 tokio thread + 1 delay thread)",
        "spool_filesystem": sorted(set(filesystems.values())),
        "connections": drive.WRK_CONNECTIONS, "body_bytes": len(bodies.put_item_request(1400)),
    }
