"""Stand-in for the application that owns this pod.

A real application uses an AWS SDK as usual; every SDK honours
AWS_ENDPOINT_URL_DYNAMODB, so its DynamoDB calls go to the sidecar on the
pod's loopback without code changes. This loop only checks that the endpoint
accepts connections, and leaves marker files for the container's probes:

    app.py                 run the loop
    app.py --probe alive   exit 0 if the loop ran recently (liveness)
    app.py --probe ready   exit 0 if the sidecar was reachable recently (readiness)

It sends no DynamoDB request itself (examples/smoke.py shows a versioned write
through the sidecar). It exits at once on SIGTERM: the sidecar is stopped only
after this container has exited, and ships its audit spool in what is left of
the pod's grace period.
"""

import json
import os
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

ENDPOINT = urlsplit(os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"))
STATE_DIR = os.environ.get("STATE_DIR", "/tmp")
INTERVAL = float(os.environ.get("INTERVAL_SECONDS", "10"))
# Three missed rounds before a probe gives up on the loop.
STALE_AFTER = 3 * INTERVAL + 5


def marker(name: str) -> str:
    return os.path.join(STATE_DIR, name)


def touch(name: str) -> None:
    with open(marker(name), "w", encoding="ascii") as f:
        f.write(str(time.time()))


def sidecar_reachable() -> bool:
    try:
        with socket.create_connection((ENDPOINT.hostname, ENDPOINT.port or 80), timeout=2):
            return True
    except OSError:
        return False


def probe(name: str) -> int:
    try:
        age = time.time() - os.path.getmtime(marker(name))
    except OSError:
        return 1
    return 0 if age <= STALE_AFTER else 1


def stop(_signum: int, _frame: object) -> None:
    # As a container's PID 1 the interpreter ignores SIGTERM unless it handles
    # it: the pod would wait out its whole grace period, and the sidecar would
    # get SIGTERM with no time left to ship its spool.
    sys.exit(0)


def run() -> None:
    signal.signal(signal.SIGTERM, stop)
    while True:
        reachable = sidecar_reachable()
        print(json.dumps({"endpoint": ENDPOINT.geturl(), "reachable": reachable}), flush=True)
        # Liveness tracks this loop, readiness the sidecar: an unreachable
        # proxy takes the pod out of service but does not restart the app.
        touch("alive")
        if reachable:
            touch("ready")
        time.sleep(INTERVAL)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--probe" and sys.argv[2] in ("alive", "ready"):
        sys.exit(probe(sys.argv[2]))
    run()
