"""Plots the size sweep of a load harness run: p50 latency and CPU per request against the
request's bytes (PutItem) and against the batch size (BatchWriteItem), one line per target.
Linear axes, so cost that grows linearly shows as a straight line.

Run by benches/load/run with the venv's Python: plot.py RESULTS_JSON OUT_PNG
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"direct": "tab:gray", "nginx": "tab:green", "sidecar": "tab:blue"}


def series(runs, operation, x_key, y_key):
    out = {}
    for r in runs:
        if r["phase"] == "sweep" and r["operation"] == operation and r.get(y_key) is not None:
            out.setdefault(r["target"], []).append((r[x_key], r[y_key]))
    return {t: sorted(points) for t, points in out.items()}


def panel(ax, data, xlabel, ylabel, x_scale=1.0):
    for target, points in data.items():
        xs = [x / x_scale for x, _ in points]
        ax.plot(xs, [y for _, y in points], marker="o", label=target, color=COLOURS.get(target))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()


def main(results_path, png_path):
    with open(results_path) as f:
        results = json.load(f)
    runs, meta = results["runs"], results["meta"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    panel(axes[0][0], series(runs, "PutItem", "body_bytes", "p50_ms"), "PutItem request body (KB)", "p50 latency (ms)", 1000)
    panel(axes[0][1], series(runs, "BatchWriteItem", "items", "p50_ms"), "BatchWriteItem puts (~1 KB each)", "p50 latency (ms)")
    panel(axes[1][0], series(runs, "PutItem", "body_bytes", "cpu_us_per_request"), "PutItem request body (KB)",
          "proxy CPU per request (us)", 1000)
    panel(axes[1][1], series(runs, "BatchWriteItem", "items", "cpu_us_per_request"), "BatchWriteItem puts (~1 KB each)",
          "proxy CPU per request (us)")
    fig.suptitle(f"GlobalScale size sweep, closed loop (wrk, {meta['wrk']['connections']} connections, "
                 f"{meta['sweep_duration_s']:g} s per point)\n{meta['date'][:16].replace('T', ' ')} UTC, commit {meta['commit']}, "
                 f"{meta['machine'].split(',')[1].strip()}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
