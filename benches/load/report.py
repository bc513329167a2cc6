"""The harness's printout: the figures side by side, and each line of the bar
(benches/README.md, "The bar") with PASS or MISS. Figures, never assertions."""

import statistics
import sys
from pathlib import Path

TARGETS = ("direct", "nginx", "sidecar")
MAIN_OPS = ("GetItem", "PutItem")

# The bar (benches/README.md, "The bar"): ratios to nginx in the same run, where the VM sets
# both proxies' costs alike, and one absolute line, the added p99 users feel.
CLOSED_P50_VS_NGINX = 1.3
CLOSED_RPS_VS_NGINX = 0.85
OPEN_ADDED_P99_MS = 1.0
CPU_VS_NGINX = 1.3
RSS_MIB = 20
RSS_RATE = 5000


def progress(r):
    rate = f"{r['rate']}/s" if r["rate"] else "closed"
    errors = f", {r['errors']} errors" if r["errors"] else ""
    print(f"load: {r['phase']:<5} r{r.get('round', 0) + 1} {r['target']:<13} {r['load']:<18} {rate:>7}: "
          f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f}  "
          f"p99.9 {r['p999_ms']:.3f} ms{errors}", file=sys.stderr)


def filesystem(path):
    """The filesystem holding `path`, from the longest mount point above it."""
    path = Path(path).resolve()
    best = (0, "unknown")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, point, kind = line.split()[:3]
        if path.is_relative_to(point) and len(point) > best[0]:
            best = (len(point), f"{kind} ({device} on {point})")
    return best[1]


def _run_key(r):
    return (r["phase"], r["target"], r["load"], r["rate"])


def medians(runs):
    """One run per phase, target, load and rate: each figure the median over the rounds
    (a run measured once is itself). Medians, not means: one round that another process on
    the machine hit should not move the figure."""
    groups = {}
    for r in runs:
        groups.setdefault(_run_key(r), []).append(r)
    out = []
    for group in groups.values():
        merged = dict(group[0])
        for field in group[0]:
            values = [g.get(field) for g in group]
            if field != "round" and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                merged[field] = statistics.median(values)
        merged.pop("round", None)
        merged["rounds"] = len(group)
        out.append(merged)
    return out


def of_round(runs, round_):
    return [r for r in runs if r.get("round", 0) == round_]


def find(runs, phase, target, load, rate=None):
    for r in runs:
        if _run_key(r) == (phase, target, load, rate):
            return r
    return None


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.0f}"


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) and b > 0 else None


def _added(r, base, key):
    return r[key] - base[key] if r and base else None


def _table(title, rows, columns):
    print(f"\n{title}")
    print(f"  {'':<26}" + "".join(f"{c:>14}" for c in columns))
    for label, values in rows:
        print(f"  {label:<26}" + "".join(f"{_fmt(v):>14}" for v in values))


def _comparison(runs, phase, load, rate):
    d, n, s = (find(runs, phase, t, load, rate) for t in TARGETS)
    if not (d and n and s):
        return
    rows = [(f"{k[:-3].replace('p999', 'p99.9')} ms", [d[k], n[k], s[k], None])
            for k in ("p50_ms", "p99_ms", "p999_ms")]
    for k in ("p50_ms", "p99_ms", "p999_ms"):
        added_n, added_s = _added(n, d, k), _added(s, d, k)
        rows.append((f"added {k[:-3].replace('p999', 'p99.9')} ms", [None, added_n, added_s, _ratio(added_s, added_n)]))
    rows.append(("throughput req/s", [d["rps"], n["rps"], s["rps"], _ratio(s["rps"], n["rps"])]))
    rows.append(("vCPU per 1k req/s", [None, n["cpu_per_1k_rps"], s["cpu_per_1k_rps"],
                                       _ratio(s["cpu_per_1k_rps"], n["cpu_per_1k_rps"])]))
    rows.append(("canned vCPU per 1k req/s", [d["upstream_cpu_per_1k_rps"], n["upstream_cpu_per_1k_rps"],
                                              s["upstream_cpu_per_1k_rps"], None]))
    rows.append(("peak RSS MiB", [None, n["rss_peak_mib"], s["rss_peak_mib"], None]))
    rows.append(("errors", [d["errors"], n["errors"], s["errors"], None]))
    mode = "closed loop" if rate is None else f"open loop at {rate} req/s"
    _table(f"{load}, {mode}", rows, ["direct", "nginx", "sidecar", "sidecar/nginx"])


def _audit_section(results):
    off = find(results["medians"], "main", "sidecar", "PutItem")
    on = find(results["medians"], "audit", "sidecar-audit", "PutItem")
    if not (off and on):
        return
    rows = [("PutItem req/s", [off["rps"], on["rps"]]),
            ("p50 ms", [off["p50_ms"], on["p50_ms"]]),
            ("p99 ms", [off["p99_ms"], on["p99_ms"]]),
            ("vCPU per 1k req/s", [off["cpu_per_1k_rps"], on["cpu_per_1k_rps"]])]
    _table("PutItem through the sidecar, closed loop, auditing off and on", rows, ["off", "on"])
    c = results["audit_counters"]
    print(f"  audit records: {c.get('spooled', 0):.0f} spooled, {c.get('shipped', 0):.0f} shipped, "
          f"{c.get('failed', 0):.0f} failed, backlog {c.get('backlog', 0):.0f} after draining; "
          f"{c.get('fsyncs', 0):.0f} fsyncs; spool on {results['meta']['spool_filesystem']}")


def _sweep_section(runs):
    sweep = [r for r in runs if r["phase"] == "sweep"]
    if not sweep:
        return
    print("\nSize sweep, closed loop (p50 ms / req/s; CPU us per request of the proxy)")
    print(f"  {'':<20}{'bytes':>9}" + "".join(f"{t + ' p50':>13}" for t in TARGETS)
          + "".join(f"{t + ' rps':>13}" for t in TARGETS) + f"{'nginx us/req':>14}{'sidecar us/req':>16}")
    for load in dict.fromkeys(r["load"] for r in sweep):
        d, n, s = (find(runs, "sweep", t, load) for t in TARGETS)
        print(f"  {load:<20}{s['body_bytes']:>9}" + "".join(f"{_fmt(r['p50_ms']):>13}" for r in (d, n, s))
              + "".join(f"{r['rps']:>13.0f}" for r in (d, n, s))
              + f"{_fmt(n['cpu_us_per_request'], 1):>14}{_fmt(s['cpu_us_per_request'], 1):>16}")


def _verdict(key, ok, text):
    """`ok` None: the line cannot be judged from these runs."""
    return {"key": key, "pass": None if ok is None else bool(ok), "text": text}


def _noise_guard(ok, *added):
    # A difference of two tails can be negative when the machine hiccuped during the
    # direct run: a ratio of such figures says nothing, so the line is not judged.
    return None if min(added) <= 0 else ok


def _closed_verdicts(runs, load):
    d, n, s = (find(runs, "main", t, load) for t in TARGETS)
    if not (d and n and s):
        return []
    a50n, a50s = _added(n, d, "p50_ms"), _added(s, d, "p50_ms")
    r50, rrps = _ratio(a50s, a50n), _ratio(s["rps"], n["rps"])
    return [
        _verdict(f"{load} closed p50", _noise_guard(r50 is not None and r50 <= CLOSED_P50_VS_NGINX, a50s, a50n),
                 f"{load} closed: sidecar added p50 {a50s:.3f} vs nginx's {a50n:.3f} ms, "
                 f"ratio {_fmt(r50, 2)} (bar <= {CLOSED_P50_VS_NGINX})"),
        _verdict(f"{load} closed rps", rrps is not None and rrps >= CLOSED_RPS_VS_NGINX,
                 f"{load} closed: sidecar throughput {s['rps']:.0f} vs nginx's {n['rps']:.0f} req/s, "
                 f"ratio {_fmt(rrps, 2)} (bar >= {CLOSED_RPS_VS_NGINX})"),
    ]


def _open_verdicts(runs, load, rates):
    out = []
    for rate in rates:
        d, n, s = (find(runs, "main", t, load, rate) for t in TARGETS)
        if not (d and n and s):
            continue
        added = _added(s, d, "p99_ms")
        out.append(_verdict(f"{load} open {rate} p99", added <= OPEN_ADDED_P99_MS,
                            f"{load} open {rate}/s: sidecar added p99 {added:.3f} ms (bar <= {OPEN_ADDED_P99_MS})"))
        cpu = _ratio(s["cpu_per_1k_rps"], n["cpu_per_1k_rps"])
        out.append(_verdict(f"{load} open {rate} cpu", cpu is not None and cpu <= CPU_VS_NGINX,
                            f"{load} open {rate}/s: sidecar CPU per request {s['cpu_per_1k_rps'] * 1000:.0f} vs "
                            f"nginx's {n['cpu_per_1k_rps'] * 1000:.0f} us, ratio {_fmt(cpu, 2)} (bar <= {CPU_VS_NGINX})"))
    return out


def verdicts(results):
    """Each line of the bar judged on the medians, with how many rounds it passed in alone."""
    rates = results["meta"]["rates"]
    # The RSS peak is the largest of every round's, not a median.
    out = _verdicts(results["medians"], rates, rss_runs=results["runs"])
    rounds = results["meta"].get("rounds", 1)
    if rounds > 1:
        per_round = [{v["key"]: v["pass"] for v in _verdicts(of_round(results["runs"], i), rates)}
                     for i in range(rounds)]
        for v in out:
            judged = [p[v["key"]] for p in per_round if p.get(v["key"]) is not None]
            v["rounds_passed"], v["rounds_judged"] = sum(judged), len(judged)
    return out


def _verdicts(runs, rates, rss_runs=None):
    out = []
    for load in MAIN_OPS:
        out += _closed_verdicts(runs, load)
    for load in MAIN_OPS:
        out += _open_verdicts(runs, load, rates)
    at_rate = [r["rss_peak_mib"] for r in rss_runs or runs if r["target"] == "sidecar" and r["rate"] == RSS_RATE]
    if at_rate:
        peak = max(at_rate)
        out.append(_verdict("rss", peak <= RSS_MIB, f"sidecar RSS peak during the {RSS_RATE}/s open-loop runs "
                                                f"{peak:.1f} MiB (bar <= {RSS_MIB})"))
    return out


def print_all(results):
    meta, runs = results["meta"], results["medians"]
    print(f"\nGlobalScale load harness: {meta['date']}, commit {meta['commit']}, {meta['machine']}")
    print(f"runs of {meta['duration_s']:g} s after {meta['warmup_s']:g} s warm-up; wrk {meta['wrk']['threads']} "
          f"thread, {meta['wrk']['connections']} connections; oha {meta['oha']['connections']} connections, "
          f"latency correction; nginx workers: canned {meta['nginx_workers']['canned']}, proxy "
          f"{meta['nginx_workers']['proxy']}; sidecar workers {meta.get('sidecar_workers', 'default')}; "
          "added = target minus direct")
    if meta.get("rounds", 1) > 1:
        print(f"every figure below is the median of {meta['rounds']} rounds, the targets' order rotated each round "
              "(each round's runs: results.json)")
    print(f"load average (1/5/15 min) at start {meta['loadavg']}, at the end {meta['loadavg_end']}: "
          "other work on the machine shows in the tails")
    for load in MAIN_OPS:
        _comparison(runs, "main", load, None)
        for rate in meta["rates"]:
            _comparison(runs, "main", load, rate)
    idle = results["idle_rss_mib"]
    at = {t: max([r["rss_peak_mib"] for r in results["runs"] if r["target"] == t and r["rate"] == RSS_RATE] or [0])
          for t in ("nginx", "sidecar")}
    _table("Memory, VmRSS MiB (nginx: master and workers summed)",
           [("idle", [idle.get("nginx"), idle.get("sidecar")]),
            (f"peak at {RSS_RATE} req/s", [at["nginx"] or None, at["sidecar"] or None])],
           ["nginx", "sidecar"])
    _audit_section(results)
    _sweep_section(runs)
    failed = [r for r in results["runs"] if r["errors"]]
    if failed:
        print("\nruns with errors (non-200 answers or failed connections):")
        for r in failed:
            print(f"  {r['phase']} round {r.get('round', 0) + 1} {r['target']} {r['load']} {r['rate'] or 'closed'}: "
                  f"{r['errors']} of {r['requests']}")
    print("\nAgainst the bar (benches/README.md, \"The bar\"), on the medians (n/a: an added latency came out zero or negative, noise of "
          "this machine; k/n: the rounds the line passed in on its own)")
    for v in results["verdicts"]:
        verdict = 'n/a ' if v['pass'] is None else 'PASS' if v['pass'] else 'MISS'
        rounds = f"{v['rounds_passed']}/{v['rounds_judged']}" if "rounds_judged" in v else ""
        print(f"  {verdict} {rounds:>4}  {v['text']}")
