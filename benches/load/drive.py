"""Driving load and watching the processes under it.

Closed loop: wrk (a fixed number of connections, each sending its next request as soon as
the last is answered): the most a target serves, and its latency at that load. Open loop:
oha at a fixed rate with latency correction (latency counted from when a request was due,
not when it was sent), so a target that falls behind shows it in its percentiles instead of
quietly slowing the generator down (coordinated omission).

CPU is the processes' utime + stime from /proc/<pid>/stat around the measured part of a run;
RSS is VmRSS from /proc/<pid>/status, sampled every 100 ms during it.
"""

import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "request.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Closed loop: one wrk thread and 8 connections. On 2 cores one wrk thread can send far
# more than the targets here serve; a second would only take CPU from the proxy measured.
WRK_THREADS = 1
WRK_CONNECTIONS = 8
# Open loop: enough connections that a 5k/s schedule never waits for a free one while the
# target keeps up; oha on one runtime thread, for the same reason as wrk's single thread.
OHA_CONNECTIONS = 32
OHA_THREADS = 1

AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDLOADCLIENT/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0f" * 32
)


def post(port, operation, body):
    """One request, the way the load generators send it: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810." + operation,
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": AUTHORIZATION,
        })
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # After the command name in parentheses, utime and stime are fields 14 and 15.
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class RssSampler(threading.Thread):
    """The largest VmRSS (summed over `pids_fn()`) seen while running."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn = pids_fn
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pids_fn()))
            self._done.wait(0.1)

    def finish(self):
        self._done.set()
        self.join()
        self.peak_kib = max(self.peak_kib, rss_kib(self.pids_fn()))
        return self.peak_kib


class Load:
    """One kind of request: the operation, the body file, and the items it writes."""

    def __init__(self, operation, body, workdir, label=None, items=1):
        self.operation = operation
        self.label = label or operation
        self.items = items
        self.size = len(body)
        fd, path = tempfile.mkstemp(prefix=f"{self.label}-", suffix=".json", dir=workdir)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        self.body_path = path


def _wrk(url, load, seconds):
    env = dict(os.environ, LOAD_TARGET=load.operation, LOAD_BODY=load.body_path)
    argv = ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{seconds:g}s",
            "--timeout", "10s", "-s", str(LUA), url]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRK_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.split(" ", 1)[1])
    errors = sum(r["errors"].values())
    return {
        "requests": r["requests"],
        "errors": errors,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
    }


def _oha(url, load, seconds, rate):
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds:g}s",
            "-q", str(rate), "--latency-correction",
            "-c", str(OHA_CONNECTIONS), "--worker-threads", str(OHA_THREADS),
            "-m", "POST", "-T", "application/x-amz-json-1.0",
            "-H", f"X-Amz-Target: DynamoDB_20120810.{load.operation}",
            "-H", "X-Amz-Date: 20260101T000000Z",
            "-H", f"Authorization: {AUTHORIZATION}",
            "-D", load.body_path, url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr}")
    r = json.loads(out.stdout)
    codes = r.get("statusCodeDistribution", {})
    ok = int(codes.get("200", 0))
    # Requests still in flight at the deadline are aborted by oha and are not errors.
    errors = sum(int(n) for code, n in codes.items() if code != "200") + sum(
        int(n) for e, n in r.get("errorDistribution", {}).items() if "aborted due to deadline" not in e)
    pct = r["latencyPercentiles"]
    return {
        "requests": ok,
        "errors": errors,
        "rps": ok / r["summary"]["total"],
        "p50_ms": pct["p50"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "p999_ms": pct["p99.9"] * 1000,
        "max_ms": r["summary"]["slowest"] * 1000,
    }


def measure(target, load, seconds, warmup, rate=None):
    """One run against `target` (a dict: name, url, pids_fn, upstream_pids_fn): a warm-up
    of the same load, then the measured part with CPU and RSS around it."""
    drive = (lambda s: _wrk(target["url"], load, s)) if rate is None else (
        lambda s: _oha(target["url"], load, s, rate))
    if warmup > 0:
        drive(warmup)
    pids = target["pids_fn"]()
    upstream_pids = target["upstream_pids_fn"]()
    sampler = RssSampler(target["pids_fn"])
    cpu0, up0, t0 = cpu_seconds(pids), cpu_seconds(upstream_pids), time.monotonic()
    sampler.start()
    result = drive(seconds)
    wall = time.monotonic() - t0
    cpu, upstream_cpu = cpu_seconds(pids) - cpu0, cpu_seconds(upstream_pids) - up0
    peak = sampler.finish()
    result.update(
        target=target["name"], operation=load.operation, load=load.label, body_bytes=load.size, items=load.items,
        mode="closed" if rate is None else "open", rate=rate, seconds=seconds,
        # vCPU used (CPU seconds per wall second) per 1000 requests/s served.
        cpu_vcpu=cpu / wall if pids else None,
        cpu_per_1k_rps=(cpu / wall) / (result["rps"] / 1000) if pids and result["rps"] else None,
        cpu_us_per_request=cpu / result["requests"] * 1e6 if pids and result["requests"] else None,
        upstream_cpu_per_1k_rps=(upstream_cpu / wall) / (result["rps"] / 1000) if result["rps"] else None,
        rss_peak_mib=peak / 1024 if pids else None,
    )
    return result
