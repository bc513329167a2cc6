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
# Auditing (the audit phase, PutItem closed loop, 8 connections): with the region answering
# after 2 ms, throughput within 5 % and at most 100 us added to p50; answering at once, at
# most 30 % of throughput.
AUDIT_DELAYED_US = 2000
AUDIT_DELAYED_COST = 0.05
AUDIT_DELAYED_ADDED_P50_US = 100
AUDIT_INSTANT_COST = 0.30


def progress(r):
    rate = f"{r['rate']}/s" if r["rate"] else "closed"
    errors = f", {r['errors']} errors" if r["errors"] else ""
    load = r["load"] if r.get("delay_us") is None else f"{r['load']} {_delay(r['delay_us'])}"
    print(f"load: {r['phase']:<5} r{r.get('round', 0) + 1} {r['target']:<13} {load:<18} {rate:>7}: "
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
    return (r["phase"], r["target"], r["load"], r["rate"], r.get("delay_us"))


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


def find(runs, phase, target, load, rate=None, delay_us=None):
    for r in runs:
        if _run_key(r) == (phase, target, load, rate, delay_us):
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


def _delay(delay_us):
    return "at once" if delay_us == 0 else f"after {delay_us / 1000:g} ms"


def _audit_cost(off, on):
    """1 - audited throughput / unaudited, and the p50 auditing added, in us."""
    return 1 - on["rps"] / off["rps"], (on["p50_ms"] - off["p50_ms"]) * 1000


def _audit_section(results):
    audit = results.get("audit")
    if not audit:
        return
    meds, runs = results["medians"], results["runs"]
    for delay_us in audit["delays_us"]:
        d, off, on = (find(meds, "audit", t, "PutItem", delay_us=delay_us)
                      for t in ("direct", "sidecar", "sidecar-audit"))
        if not (off and on):
            continue
        cost, added = _audit_cost(off, on)

        def each(key, digits, scale=1):
            return [None if r is None or r.get(key) is None else f"{r[key] * scale:.{digits}f}" for r in (d, off, on)]
        rows = [(f"{k[:-3].replace('p999', 'p99.9')} ms", each(k, 3) + [f"{(on[k] - off[k]) * 1000:+.0f} us"])
                for k in ("p50_ms", "p99_ms", "p999_ms")]
        cpu_added = on["cpu_us_per_request"] - off["cpu_us_per_request"]
        rows += [("PutItem/s", each("rps", 0) + [f"{-cost * 100:+.1f} %"]),
                 ("sidecar CPU us per PutItem", each("cpu_us_per_request", 1) + [f"{cpu_added:+.1f}"]),
                 ("region CPU us per PutItem", each("upstream_cpu_per_1k_rps", 1, scale=1000) + [None]),
                 ("errors", each("errors", 0) + [None])]
        _table(f"PutItem through the sidecar, auditing off and on, the canned region answering {_delay(delay_us)} "
               f"(closed loop, wrk {audit['connections']} connections; medians of {audit['rounds']} rounds)",
               rows, ["direct", "off", "on", "on - off"])
        audited = [r for r in runs if r["phase"] == "audit" and r["target"] == "sidecar-audit"
                   and r.get("delay_us") == delay_us]
        kept = sum(1 for r in audited if r["kept_up"] and r["failed"] == 0)
        print(f"  audit cost {cost * 100:.1f} %, added p50 {added:.0f} us; fsync groups: "
              f"{_fmt(on['records_per_fsync'], 2)} records per fsync over the audited run, largest group "
              f"{max(r['largest_group'] for r in audited):.0f} since start-up")
        print(f"  shipper: {on['spooled']:.0f} records spooled per run, {on['shipped']:.0f} shipped; backlog "
              f"{on['backlog_at_end']:.0f} at the run's end, shipped in {on['drain_s'] * 1000:.0f} ms; kept up in "
              f"{kept}/{len(audited)} rounds (every settled record shipped, none failed); shipping lag p50 "
              f"{_fmt(on['lag_p50_ms'], 0)} ms, p99 {_fmt(on['lag_p99_ms'], 0)} ms ({on['lag_records']:.0f} records "
              f"in {on['lag_batches']:.0f} BatchWriteItems, spooled to received, ms resolution)")
        stranded = sum(r["stranded"] for r in audited)
        if stranded:
            print(f"  stranded: {stranded:.0f} intents left unsettled in the spool over {len(audited)} runs "
                  "(writes whose client hung up while the region worked, as wrk does at a run's end; "
                  "they stay in the backlog until the sidecar's next start)")
    print(f"  spool on {', '.join(audit['spool_filesystem'])}; region: {audit['region']}")


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
    rounds = max(results["meta"].get("rounds", 1), results.get("audit", {}).get("rounds", 1))
    if rounds > 1:
        per_round = [{v["key"]: v["pass"] for v in _verdicts(of_round(results["runs"], i), rates)}
                     for i in range(rounds)]
        for v in out:
            judged = [p[v["key"]] for p in per_round if p.get(v["key"]) is not None]
            v["rounds_passed"], v["rounds_judged"] = sum(judged), len(judged)
    return out


def _audit_verdicts(runs):
    out = []
    for delay_us in dict.fromkeys(r["delay_us"] for r in runs if r["phase"] == "audit"):
        off, on = (find(runs, "audit", t, "PutItem", delay_us=delay_us) for t in ("sidecar", "sidecar-audit"))
        if not (off and on):
            continue
        cost, added = _audit_cost(off, on)
        groups = f"{_fmt(on['records_per_fsync'], 1)} records per fsync"
        if delay_us == AUDIT_DELAYED_US:
            out.append(_verdict(f"audit {delay_us} rps", cost <= AUDIT_DELAYED_COST,
                                f"PutItem audited, region {_delay(delay_us)}: {on['rps']:.0f} vs {off['rps']:.0f} "
                                f"req/s unaudited, cost {cost * 100:.1f} % (bar <= {AUDIT_DELAYED_COST * 100:.0f} %); "
                                f"{groups}"))
            out.append(_verdict(f"audit {delay_us} p50", added <= AUDIT_DELAYED_ADDED_P50_US,
                                f"PutItem audited, region {_delay(delay_us)}: p50 {on['p50_ms']:.3f} vs "
                                f"{off['p50_ms']:.3f} ms unaudited, added {added:.0f} us "
                                f"(bar <= {AUDIT_DELAYED_ADDED_P50_US} us)"))
        elif delay_us == 0:
            out.append(_verdict(f"audit {delay_us} rps", cost <= AUDIT_INSTANT_COST,
                                f"PutItem audited, region {_delay(delay_us)}: {on['rps']:.0f} vs {off['rps']:.0f} "
                                f"req/s unaudited, cost {cost * 100:.1f} % (bar <= {AUDIT_INSTANT_COST * 100:.0f} %); "
                                f"{groups}"))
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
    return out + _audit_verdicts(runs)


def _main_sections(results):
    runs = results["medians"]
    for load in MAIN_OPS:
        _comparison(runs, "main", load, None)
        for rate in results["meta"]["rates"]:
            _comparison(runs, "main", load, rate)
    idle = results["idle_rss_mib"]
    at = {t: max([r["rss_peak_mib"] for r in results["runs"]
                  if r["phase"] == "main" and r["target"] == t and r["rate"] == RSS_RATE] or [0])
          for t in ("nginx", "sidecar")}
    _table("Memory, VmRSS MiB (nginx: master and workers summed)",
           [("idle", [idle.get("nginx"), idle.get("sidecar")]),
            (f"peak at {RSS_RATE} req/s", [at["nginx"] or None, at["sidecar"] or None])],
           ["nginx", "sidecar"])


def print_all(results):
    meta, runs = results["meta"], results["medians"]
    print(f"\nGlobalScale load harness: {meta['date']}, commit {meta['commit']}, {meta['machine']}")
    print(f"runs of {meta['duration_s']:g} s after {meta['warmup_s']:g} s warm-up; wrk {meta['wrk']['threads']} "
          f"thread, {meta['wrk']['connections']} connections; oha {meta['oha']['connections']} connections, "
          f"latency correction; nginx workers: canned {meta['nginx_workers']['canned']}, proxy "
          f"{meta['nginx_workers']['proxy']}; sidecar workers {meta.get('sidecar_workers', 'default')}; "
          "added = target minus direct")
    main = "main" in meta.get("phases", ["main"])
    if main and meta.get("rounds", 1) > 1:
        print(f"every figure below is the median of {meta['rounds']} rounds, the targets' order rotated each round "
              "(each round's runs: results.json)")
    print(f"load average (1/5/15 min) at start {meta['loadavg']}, at the end {meta['loadavg_end']}: "
          "other work on the machine shows in the tails")
    if main:
        _main_sections(results)
    _audit_section(results)
    _sweep_section(runs)
    failed = [r for r in results["runs"] if r["errors"]]
    if failed:
        print("\nruns with errors (non-200 answers or failed connections):")
        for r in failed:
            delay = "" if r.get("delay_us") is None else f" (region {_delay(r['delay_us'])})"
            print(f"  {r['phase']} round {r.get('round', 0) + 1} {r['target']} {r['load']}{delay} {r['rate'] or 'closed'}: "
                  f"{r['errors']} of {r['requests']}")
    print("\nAgainst the bar (benches/README.md, \"The bar\"), on the medians (n/a: an added latency came out zero or negative, noise of "
          "this machine; k/n: the rounds the line passed in on its own)")
    for v in results["verdicts"]:
        verdict = 'n/a ' if v['pass'] is None else 'PASS' if v['pass'] else 'MISS'
        rounds = f"{v['rounds_passed']}/{v['rounds_judged']}" if "rounds_judged" in v else ""
        print(f"  {verdict} {rounds:>4}  {v['text']}")
