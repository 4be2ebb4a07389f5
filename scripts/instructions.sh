#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: the user-space work of one
# `/auth` check with a hot token, exactly, with none of the noise of a shared machine.
# Kernel work (the socket calls) is not counted, and neither is time: this says how much
# code a request runs, not how long it takes; scripts/cpu.sh measures that. Use it to
# compare builds (a change, a dependency bump) and to find where the instructions go.
#
#   scripts/instructions.sh                         # tollgate (target/release) and bare axum
#   OTHER_TOLLGATE=/tmp/tollgate-before scripts/instructions.sh
#   REQUESTS=5000 ROUNDS=3 SKIP_BUILD=1 scripts/instructions.sh
#
# Each server runs under `valgrind --tool=callgrind`, is warmed up (500 requests), then per
# round its counters are zeroed (`callgrind_control -z`), h2load sends REQUESTS requests
# over 4 keep-alive HTTP/1.1 connections, and the counters are dumped (`-d`); the dump's
# total over REQUESTS is the figure. Rounds agree to within a few instructions. The dumps
# stay in OUT, to be read with `callgrind_annotate --inclusive=yes FILE`.
#
# Under valgrind the CPU has no SHA extensions, so the token's SHA-256 (the cache key) runs
# aws-lc's AVX code: about 23,000 instructions for a 700-byte RS256 token, against a few
# hundred cycles natively with SHA-NI. Compare builds with each other, not these counts
# with CPU time.
#
# Knobs (environment): REQUESTS (3000) ROUNDS (2) PORT_BASE (18700) OUT (target/instructions)
# SKIP_BUILD (0) OTHER_TOLLGATE (unset). Needs valgrind and h2load (Debian: valgrind,
# nghttp2-client; installed with apt-get when missing and root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-3000}
ROUNDS=${ROUNDS:-2}
PORT_BASE=${PORT_BASE:-18700}
OUT=${OUT:-target/instructions}
SKIP_BUILD=${SKIP_BUILD:-0}
OTHER_TOLLGATE=${OTHER_TOLLGATE:-}
AUDIENCE=https://api.example.com
BIN=target/release

# shellcheck source=scripts/load/lib.sh
source scripts/load/lib.sh

need valgrind valgrind
need callgrind_control valgrind
need h2load nghttp2-client

mkdir -p "$OUT"
rm -f "$OUT"/callgrind.*
if [[ $SKIP_BUILD != 1 ]]; then
    echo "== cargo build --release --bin tollgate --example bare --example tokens"
    cargo build --release --bin tollgate --example bare --example tokens
fi
for exe in tollgate examples/bare examples/tokens; do
    [[ -x $BIN/$exe ]] || die "$BIN/$exe is missing; run without SKIP_BUILD=1"
done
[[ -z $OTHER_TOLLGATE || -x $OTHER_TOLLGATE ]] || die "OTHER_TOLLGATE=$OTHER_TOLLGATE is not an executable"

start "$WORK/tokens.log" "$BIN/examples/tokens" --count 1 --out "$WORK/tokens.txt" --audience "$AUDIENCE"
TOKENS_PID=$LAST_PID
wait_for "$TOKENS_PID" 60 grep -q '^READY' "$WORK/tokens.log" || die "the issuer did not start: $(cat "$WORK/tokens.log")"
ISSUER=$(sed -n 's/^ISSUER=//p' "$WORK/tokens.log")
HOT=$(head -n 1 "$WORK/tokens.txt")

# The servers: name, port, pid.
NAMES=()
declare -A PORT PID

# callgrind NAME PORT CMD...: starts CMD under callgrind (not a wrapper such as `env`: its
# exec would leave valgrind behind).
callgrind() {
    local name=$1 port=$2
    shift 2
    # tollgate reads TOLLGATE_* variables as settings: the caller's TOLLGATE_PORT is not one.
    start "$OUT/$name.log" env -u TOLLGATE_PORT \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$name.%p" "$@"
    NAMES+=("$name")
    PORT[$name]=$port
    PID[$name]=$LAST_PID
}

# tollgate_under_callgrind NAME PORT BINARY: with the Envoy dialect and warn logs, as cpu.sh runs it.
tollgate_under_callgrind() {
    local name=$1 port=$2 binary=$3
    load_config "$WORK/$name.toml" "127.0.0.1:$port"
    callgrind "$name" "$port" "$binary" serve --config "$WORK/$name.toml"
}

for port in $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)); do
    if port_in_use "$port"; then die "port $port is in use; set PORT_BASE"; fi
done
callgrind bare $((PORT_BASE + 1)) "$BIN/examples/bare" $((PORT_BASE + 1))
tollgate_under_callgrind tollgate $((PORT_BASE + 2)) "$BIN/tollgate"
[[ -z $OTHER_TOLLGATE ]] || tollgate_under_callgrind other $((PORT_BASE + 3)) "$OTHER_TOLLGATE"

url() { echo "http://127.0.0.1:${PORT[$1]}/auth/orders"; }
load() { h2load --h1 -n "$2" -c 4 -H "Authorization: Bearer $HOT" "$(url "$1")"; }
for name in "${NAMES[@]}"; do
    wait_for "${PID[$name]}" 120 curl -fs -o /dev/null -H "Authorization: Bearer $HOT" "$(url "$name")" ||
        die "$name did not answer 200 under valgrind: $(tail -n 5 "$OUT/$name.log")"
    load "$name" 500 >/dev/null
done

# The total of the newest dump of NAME's process.
dumped_total() {
    local file
    file=$(ls -t "$OUT/callgrind.$1.${PID[$1]}".* | head -n 1)
    awk '/^(summary|totals):/ {print $2; exit}' "$file"
}

# The instructions of the newest dump of NAME's process spent in SHA-256 (aws-lc's one-shot
# `SHA256`, inclusive: the cache key), 0 for bare.
sha_total() {
    local file
    file=$(ls -t "$OUT/callgrind.$1.${PID[$1]}".* | head -n 1)
    callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null |
        awk '!found && /:aws_lc_[0-9_]+_SHA256 / {gsub(",", "", $1); found = $1} END {print found + 0}'
}

declare -A PER_REQUEST NO_SHA
echo "== $ROUNDS rounds of $REQUESTS requests each (GET /auth/orders, one hot token, 4 connections)"
for ((r = 1; r <= ROUNDS; r++)); do
    for name in "${NAMES[@]}"; do
        callgrind_control -z "${PID[$name]}" >/dev/null 2>&1
        result=$(load "$name" "$REQUESTS")
        grep -q "status codes: $REQUESTS 2xx" <<<"$result" || die "$name: not every request answered 2xx: $result"
        callgrind_control -d "${PID[$name]}" >/dev/null 2>&1
        total=$(dumped_total "$name")
        PER_REQUEST[$name]=$((total / REQUESTS))
        NO_SHA[$name]=$(((total - $(sha_total "$name")) / REQUESTS))
        printf '  %-9s round %d: %7d instructions per request, %7d less SHA-256\n' \
            "$name" "$r" "${PER_REQUEST[$name]}" "${NO_SHA[$name]}"
    done
done

echo "== last round"
for name in "${NAMES[@]}"; do
    printf '  %-9s %7d per request (%s x bare), %7d less SHA-256 (%s x bare)\n' "$name" \
        "${PER_REQUEST[$name]}" "$(ratio "${PER_REQUEST[$name]}" "${PER_REQUEST[bare]}")" \
        "${NO_SHA[$name]}" "$(ratio "${NO_SHA[$name]}" "${NO_SHA[bare]}")"
done
if [[ -n $OTHER_TOLLGATE ]]; then
    echo "  tollgate / other: $(ratio "${PER_REQUEST[tollgate]}" "${PER_REQUEST[other]}")," \
        "$((PER_REQUEST[tollgate] - PER_REQUEST[other])) instructions per request"
fi
echo "  dumps: $OUT/callgrind.* (callgrind_annotate --inclusive=yes FILE)"
