# shellcheck shell=bash disable=SC2034  # the variables are used by up and down
# Shared by deploy/local/up and deploy/local/down (sourced, not run).
#
# The ports are the ones config/local.toml names: the sidecar on 8000, its admin
# endpoints on 9000, and the three "regions" on 8001-8003.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/deploy/local
STATE=${GLOBALSCALE_LOCAL_STATE_DIR:-$REPO/.tools/local-state}
STATE=${STATE%/}
[[ $STATE == /* ]] || STATE=$PWD/$STATE
LOGS=$STATE/logs
# Where `up` links the sidecar binary it runs, for its subcommands.
TOOL_BIN=$REPO/.tools/bin
CONFIG=$REPO/config/local.toml

REGION_PORTS=(8001 8002 8003)
SIDECAR_PORT=8000
ADMIN_PORT=9000

SIDECAR_PIDFILE=$STATE/sidecar.pid

info() {
    echo "$(basename "$0"): $*" >&2
}

die() {
    echo "$(basename "$0"): error: $*" >&2
    exit 1
}

dynamodb_pidfile() {
    echo "$STATE/dynamodb-$1.pid"
}

# Prints the full command line of pid, or nothing if it is gone.
cmdline() {
    ps -ww -o args= -p "$1" 2>/dev/null || true
}

# Prints the pid recorded in a pid file if that process is still alive.
live_pid() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# True if pid is the DynamoDB Local that up started on port with this state dir. The
# pid file alone is not enough: after a reboot the number may belong to anything.
is_our_dynamodb() {
    local args
    args=$(cmdline "$1")
    [[ $args == *DynamoDBLocal.jar* && $args == *"-port $2 "* && $args == *"-dbPath $STATE/db "* ]]
}

is_our_sidecar() {
    local args
    args=$(cmdline "$1")
    [[ $args == *globalscale* && $args == *"--config $CONFIG"* ]]
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A best-effort description of who listens on a port, for error messages.
port_holder() {
    local holder=""
    if command -v ss >/dev/null 2>&1; then
        holder=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(.*)' | head -n 1 || true)
    elif command -v lsof >/dev/null 2>&1; then
        holder=$(lsof -nP -iTCP:"$1" -sTCP:LISTEN 2>/dev/null | awk 'NR == 2 { print $1 " pid " $2 }' || true)
    fi
    [[ -n $holder ]] && echo " ($holder)"
    return 0
}

# Sends TERM to the given pids, waits up to 15 s for them to exit, then KILLs the rest.
stop_pids() {
    local pid waited=0 alive
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    while ((waited < 150)); do
        alive=()
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        ((${#alive[@]} == 0)) && return 0
        sleep 0.1
        waited=$((waited + 1))
    done
    info "still running after 15 s, killing: ${alive[*]}"
    kill -KILL "${alive[@]}" 2>/dev/null || true
}
