"""The processes under test: the canned region and the plain reverse proxy (both Debian's
nginx, each with its own prefix and config in the run's temp dir, in the foreground), the
audit phase's delayed canned region (benches/canned_region.rs) and the sidecar (the release
build, one config without and one with auditing).

Every process is started here and stopped here, by its own pid, even when a step fails.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import bodies

NGINX = "/usr/sbin/nginx"

# The canned region does almost nothing per request (a fixed body chosen by a map), so one
# worker keeps it off the second core as much as possible: on this 2-core machine the load
# generator and the proxy under test need the rest.
CANNED_WORKERS = 1
# The proxy under test gets one worker per core, as `worker_processes auto` would here, and
# as the sidecar's tokio runtime gets one worker thread per core: like for like.
PROXY_WORKERS = 2

# Shared by both nginx configs: temp paths inside the run's dir (never /var/lib/nginx), no
# access log (the sidecar writes none per request either), and keep-alive long enough that
# no pooled connection is closed mid-run (nginx closes after 1000 requests by default).
_HTTP_COMMON = """
    access_log off;
    client_body_temp_path {dir}/{name}-body;
    proxy_temp_path {dir}/{name}-proxy;
    fastcgi_temp_path {dir}/{name}-fastcgi;
    uwsgi_temp_path {dir}/{name}-uwsgi;
    scgi_temp_path {dir}/{name}-scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    # The sidecar takes bodies up to 16 MiB; the size sweep sends 400 KB.
    client_max_body_size 16m;
    # Bodies up to 1 MiB stay in memory, as the sidecar holds them: without this nginx would
    # write every body over 16 KB to a temp file, and the size sweep would measure the disk.
    client_body_buffer_size 1m;
"""

_CANNED = """# The canned DynamoDB region: a fixed answer per X-Amz-Target, with the headers
# DynamoDB sends (the sidecar checks x-amz-crc32 against the body it gets).
worker_processes {workers};
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}.error.log warn;
events {{ worker_connections 8192; }}
http {{
{common}
    map $http_x_amz_target $canned_body {{
{bodies}
        default '{{}}';
    }}
    map $http_x_amz_target $canned_crc32 {{
{crcs}
        default {default_crc};
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/x-amz-json-1.0;
            add_header x-amz-crc32 $canned_crc32 always;
            add_header x-amzn-RequestId $request_id always;
            return 200 $canned_body;
        }}
    }}
}}
"""

_PROXY = """# A plain reverse proxy in front of the canned region: the reference the sidecar is
# measured against.
worker_processes {workers};
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}.error.log warn;
events {{ worker_connections 8192; }}
http {{
{common}
    upstream canned {{
        server 127.0.0.1:{upstream};
        # Pooled upstream connections, as the sidecar keeps them.
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://canned;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def free_ports(n):
    """`n` distinct free loopback ports (held open together so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_port(port, what, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on 127.0.0.1:{port} after {timeout:.0f} s")


def children(pid):
    """Pids whose parent is `pid` (nginx's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # After the command name in parentheses: state, then ppid.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class Process:
    """One started process, its log, and the pids that count as it (itself, and for nginx
    its workers)."""

    def __init__(self, name, argv, log_path, env=None, with_children=False):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.with_children = with_children

    @property
    def pid(self):
        return self.proc.pid

    def pids(self):
        return [self.pid] + (children(self.pid) if self.with_children else [])

    def log_tail(self, lines=30):
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, sig=signal.SIGTERM, grace=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _nginx_conf(template, name, workdir, port, **extra):
    common = _HTTP_COMMON.format(dir=workdir, name=name)
    return template.format(dir=workdir, name=name, port=port, common=common, **extra)


def _canned_conf(workdir, port):
    answers = bodies.canned_answers()
    # nginx strings in single quotes: the JSON holds double quotes, no single quote, no `$`
    # (which nginx would read as a variable) and no backslash.
    for body in answers.values():
        assert b"'" not in body and b"$" not in body and b"\\" not in body
    body_lines = "\n".join(
        f"        {bodies.TARGET_PREFIX}{op} '{body.decode()}';" for op, body in answers.items()
    )
    crc_lines = "\n".join(
        f"        {bodies.TARGET_PREFIX}{op} {bodies.crc32(body)};" for op, body in answers.items()
    )
    return _nginx_conf(
        _CANNED, "canned", workdir, port, workers=CANNED_WORKERS,
        bodies=body_lines, crcs=crc_lines, default_crc=bodies.crc32(b"{}"),
    )


def start_nginx(name, conf_text, workdir, port):
    conf = Path(workdir) / f"{name}.conf"
    conf.write_text(conf_text)
    check = subprocess.run([NGINX, "-t", "-q", "-p", str(workdir), "-c", str(conf), "-e", "stderr"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refuses {conf}:\n{check.stderr}")
    process = Process(name, [NGINX, "-p", str(workdir), "-c", str(conf), "-e", "stderr"],
                      Path(workdir) / f"{name}.log", with_children=True)
    wait_for_port(port, f"nginx {name}", process.proc)
    return process


def start_canned(workdir, port):
    return start_nginx("canned", _canned_conf(workdir, port), workdir, port)


def start_proxy(workdir, port, upstream_port):
    conf = _nginx_conf(_PROXY, "proxy", workdir, port, workers=PROXY_WORKERS, upstream=upstream_port)
    return start_nginx("proxy", conf, workdir, port)


def start_canned_region(binary, workdir, port, delay_us):
    """The canned region of the audit phase (benches/canned_region.rs, a process of its own):
    the same answers as nginx's (checked by the audit phase), each released `delay_us` after
    the request was read, and the audit shipper's lag at `GET /lags`."""
    name = f"canned-{delay_us}us"
    argv = [str(binary), "--listen", f"127.0.0.1:{port}", "--delay-us", str(delay_us)]
    process = Process(name, argv, Path(workdir) / f"{name}.log")
    wait_for_port(port, f"canned region {name}", process.proc)
    return process


def sidecar_config(port, admin_port, upstream_port, spool_dir=None):
    """One region (the canned one) is enough: every request is served by the home region, and
    two more regions pointing at the same place would only add probes to the measurement."""
    text = f"""# Written by benches/load/run.
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin_port}"

[upstream_credentials]
access_key_id = "AKIDLOADHARNESS"
secret_access_key = "load-harness-secret"

[[regions]]
name = "{bodies.HOME_REGION}"
endpoint = "http://127.0.0.1:{upstream_port}"

[auth]
mode = "none"

[[tables]]
name = "{bodies.TABLE}"
partition_key = "ItemID"
sort_key = "Category"
key_prefix = "{{region}}#"
version_attribute = "Version"
"""
    if spool_dir is not None:
        text += f"""audit = true

[audit]
table = "{bodies.TABLE}-audit"
spool_dir = "{spool_dir}"
images = "new"
"""
    return text


def start_sidecar(name, binary, workdir, port, admin_port, upstream_port, spool_dir=None):
    conf = Path(workdir) / f"{name}.toml"
    conf.write_text(sidecar_config(port, admin_port, upstream_port, spool_dir))
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    process = Process(name, [str(binary), "--config", str(conf)], Path(workdir) / f"{name}.log", env=env)
    try:
        wait_for_port(port, f"sidecar {name}", process.proc, timeout=30)
        _wait_ready(admin_port, process)
    except RuntimeError as e:
        raise RuntimeError(f"{e}\n--- {process.log_path} ---\n{process.log_tail()}") from None
    return process


def _wait_ready(admin_port, process, timeout=20.0):
    """`/readyz` is 200 once a region is healthy: the canned one has to pass as a region."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"sidecar exited with {process.proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"sidecar /readyz not 200 after {timeout:.0f} s ({last})")


class Stack:
    """Everything started for one run; `close` stops it in reverse order."""

    def __init__(self):
        self.processes = []

    def add(self, process):
        self.processes.append(process)
        return process

    def terminate(self):
        """SIGTERM to every process, without waiting: their drains go on meanwhile."""
        for p in self.processes:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)

    def close(self):
        # SIGTERM to every sidecar first, so their drains (about 2 s each) overlap.
        self.terminate()
        for p in reversed(self.processes):
            try:
                p.stop()
            except Exception as e:  # a failed stop must not hide the others
                print(f"load: stopping {p.name}: {e}", file=sys.stderr)
