# Shared by the load scripts (load.sh, cpu.sh, instructions.sh, soak.sh; sourced, not run):
# process bookkeeping, waiting, small arithmetic, installing what they need, and the tollgate
# config of the load runs. The sourcing script sets `set -euo pipefail` and `cd`s to the
# repository first.
#
# Every background process goes through `start`, which records its pid in PIDS; on exit,
# however the script ends, each one is killed by that pid and waited for, and WORK (a
# temporary directory made here) is removed.

PIDS=()
WORK=$(mktemp -d)
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# start LOG CMD...: runs CMD in the background; its pid is left in LAST_PID.
start() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# forget PID: a process we started has ended; drop it from PIDS.
forget() {
    local kept=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

# stop PID: kills one process we started, waits for it and forgets it.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget "$1"
}

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for PID SECONDS CMD...: until CMD succeeds; fails if PID dies or time runs out.
wait_for() {
    local pid=$1 limit=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f\n", a / b}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# spread VALUES...: "median (min..max)" of the arguments.
spread() {
    local sorted
    sorted=$(printf '%s\n' "$@" | sort -g)
    echo "$(median "$@") ($(head -n 1 <<<"$sorted")..$(tail -n 1 <<<"$sorted"))"
}

# seconds DURATION: "2s" or "2" as a number of seconds.
seconds() {
    [[ $1 =~ ^([0-9]+)s?$ ]] || die "durations are whole seconds (2s), not $1"
    echo "${BASH_REMATCH[1]}"
}

# metric NAME: a counter from tollgate's /metrics on TOLLGATE_PORT (0 when not exported yet).
metric() {
    curl -fsS "http://127.0.0.1:$TOLLGATE_PORT/metrics" | awk -v n="$1" '$1 == n {v = $2} END {print v + 0}'
}

# need COMMAND PACKAGE: COMMAND on PATH, or PACKAGE installed with apt-get when running as
# root on Debian.
need() {
    command -v "$1" >/dev/null && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y "$2" >/dev/null || die "could not install $2"
    fi
    command -v "$1" >/dev/null || die "$1 is needed: apt-get install -y $2"
}

need_wrk() {
    need curl curl
    need wrk wrk
}

# load_config FILE LISTEN [GRPC_LISTEN]: the tollgate config of the load scripts, for the
# development issuer at ISSUER and AUDIENCE: the Envoy dialect (the check path carries the
# request), logs at warn.
load_config() {
    {
        echo "listen = \"$2\""
        if [[ -n ${3:-} ]]; then printf '[grpc]\nlisten = "%s"\n' "$3"; fi
        cat <<EOF
[issuer]
url = "$ISSUER"
audience = "$AUDIENCE"
[proxy]
gateway = "envoy"
[log]
level = "warn"
EOF
    } >"$1"
}
