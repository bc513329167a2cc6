"""The harness's tools, installed when missing and checked, loudly: Debian's nginx-light and
wrk (apt), oha (cargo install), matplotlib in a venv of its own, the sidecar's release build
and the audit phase's canned region (benches/canned_region.rs, built as a bench: optimised).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# matplotlib 3.10 supports Python 3.10 to 3.13, so Debian 12's Python 3.11 and newer work.
MATPLOTLIB_PIN = "matplotlib==3.10.8"
# The oha flags the open-loop runs use; an oha without them would measure something else.
OHA_FLAGS = ("-q", "--latency-correction", "--output-format", "--no-tui", "--worker-threads")


class ToolError(RuntimeError):
    pass


def _run(argv, what, cwd=None):
    print(f"load: {what}: {' '.join(argv)}", file=sys.stderr)
    if subprocess.run(argv, stdout=sys.stderr, cwd=cwd).returncode != 0:
        raise ToolError(f"{what} failed: {' '.join(argv)}")


def _as_root(argv):
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo") is None:
        raise ToolError(f"not root and no sudo to run: {' '.join(argv)}")
    return ["sudo", *argv]


def ensure_debian_tools():
    """nginx (from nginx-light, at /usr/sbin/nginx, which is not on a user's PATH) and wrk."""
    def missing():
        return [pkg for pkg, ok in (("nginx-light", os.access("/usr/sbin/nginx", os.X_OK)),
                                    ("wrk", shutil.which("wrk") is not None)) if not ok]
    todo = missing()
    if todo:
        env_argv = ["env", "DEBIAN_FRONTEND=noninteractive"]
        _run(_as_root(["apt-get", "update"]), "apt-get update")
        _run(_as_root([*env_argv, "apt-get", "install", "-y", *todo]), "apt-get install")
        if missing():
            raise ToolError(f"still missing after apt-get install: {', '.join(missing())}")


def ensure_oha():
    """oha on PATH (or in ~/.cargo/bin), with the flags the open-loop runs need."""
    cargo_bin = Path.home() / ".cargo" / "bin"
    if shutil.which("oha") is None and (cargo_bin / "oha").exists():
        os.environ["PATH"] = f"{cargo_bin}{os.pathsep}{os.environ['PATH']}"
    if shutil.which("oha") is None:
        _run(["cargo", "install", "oha", "--locked"], "cargo install oha")
        os.environ["PATH"] = f"{cargo_bin}{os.pathsep}{os.environ['PATH']}"
    if shutil.which("oha") is None:
        raise ToolError("oha is not on PATH after cargo install oha")
    help_text = subprocess.run(["oha", "--help"], capture_output=True, text=True).stdout
    absent = [flag for flag in OHA_FLAGS if flag not in help_text]
    if absent:
        raise ToolError(f"this oha lacks {', '.join(absent)}: `cargo install oha --locked --force`")


def versions():
    def first_line(argv):
        out = subprocess.run(argv, capture_output=True, text=True)
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]
    return {
        "nginx": first_line(["/usr/sbin/nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        "oha": first_line(["oha", "--version"]),
    }


def ensure_plot_venv(repo):
    """A venv with matplotlib, at <repo>/.tools/load-venv. Not deploy/local/ensure-venv's
    .tools/venv: that script installs only the tools deploy/local and examples/ need."""
    venv = repo / ".tools" / "load-venv"
    python = venv / "bin" / "python"
    def has_matplotlib():
        return python.exists() and subprocess.run(
            [str(python), "-c", "import matplotlib"], capture_output=True).returncode == 0
    if not has_matplotlib():
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(venv)], "creating the plot venv")
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              MATPLOTLIB_PIN], "installing matplotlib")
        if not has_matplotlib():
            raise ToolError(f"matplotlib is not importable in {venv}")
    return python


def build_sidecar(repo):
    """The release build (never debug: its figures would mean nothing)."""
    _run(["cargo", "build", "--release", "--locked", "--bin", "globalscale"], "building the sidecar", cwd=repo)
    binary = repo / "target" / "release" / "globalscale"
    if not binary.exists():
        raise ToolError(f"no {binary} after cargo build --release")
    return binary


CANNED_REGION_BENCH = "canned_region"


def build_canned_region(repo):
    """`cargo bench --no-run` of the canned region (the bench profile: release's), and the
    executable's path as cargo reports it: a bench's file name carries a hash."""
    argv = ["cargo", "bench", "--locked", "--bench", CANNED_REGION_BENCH, "--no-run",
            "--message-format", "json-render-diagnostics"]
    print(f"load: building the canned region: {' '.join(argv)}", file=sys.stderr)
    out = subprocess.run(argv, cwd=repo, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise ToolError(f"building the canned region failed: {' '.join(argv)}")
    executable = None
    for line in out.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if (message.get("reason") == "compiler-artifact" and message.get("executable")
                and message["target"]["name"] == CANNED_REGION_BENCH):
            executable = Path(message["executable"])
    if executable is None or not executable.exists():
        raise ToolError(f"cargo reported no {CANNED_REGION_BENCH} executable: {' '.join(argv)}")
    return executable


def find_canned_region(repo):
    """For --no-build: the newest canned region a `cargo bench --no-run` left in target/."""
    deps = repo / "target" / "release" / "deps"
    found = [p for p in deps.glob(f"{CANNED_REGION_BENCH}-*")
             if p.suffix == "" and p.is_file() and os.access(p, os.X_OK)]
    if not found:
        raise ToolError(f"--no-build, but no {CANNED_REGION_BENCH} executable in {deps}: run once without --no-build")
    return max(found, key=lambda p: p.stat().st_mtime)
