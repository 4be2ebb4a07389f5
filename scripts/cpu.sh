#!/usr/bin/env bash
# CPU time of the server process per request, on loopback: tollgate's two front doors side
# by side with bare servers that answer the same allow and do nothing else, in one run.
# See docs/performance.md ("CPU per request") for what is measured and how to read it.
#
#   scripts/cpu.sh                      # build, then 8 rounds (about 2.5 minutes)
#   ROUNDS=4 SKIP_BUILD=1 scripts/cpu.sh
#
# Workloads, each GET /orders with one valid Bearer token (cached after the first request):
#   http-bare  examples/bare.rs: /auth/orders answers 200 and three fixed headers (wrk)
#   http-hot   tollgate /auth/orders, Envoy dialect (wrk)
#   http-none  tollgate /auth/orders without Authorization: the 401 with challenges (wrk)
#   grpc-bare  examples/bare_grpc.rs: Check answers OK with the three headers (grpc_load)
#   grpc-hot   tollgate's gRPC door, the same CheckRequest (examples/grpc_load.rs)
# With OTHER_TOLLGATE=PATH (another tollgate binary, say one built before a change, copied
# out of target/), a second tollgate runs beside the first and two more workloads go into
# the rounds, http-other and grpc-other, for ratios of the two builds measured side by side.
# The measure is the server's own CPU: utime + stime of its process from /proc/PID/stat,
# read right before the load generator starts and right after it ends, divided by the
# requests it completed. The load generator's CPU is not counted (it shares the 2 cores,
# so it does cap the rate). After a warm-up run each, ROUNDS rounds of DURATION per
# workload, interleaved, the order rotating each round; the summary gives the median of
# the per-round ratios (min..max), and the medians of the absolute figures.
#
# Knobs (environment): DURATION (3s) WARMUP (2s) ROUNDS (8) THREADS (2: wrk threads and
# grpc_load worker threads) CONNECTIONS (32: wrk connections) GRPC_CONNECTIONS (2: HTTP/2
# connections, as Envoy keeps one per worker) GRPC_CONCURRENCY (32: calls in flight)
# WORKLOADS ("http-bare http-hot http-none grpc-bare grpc-hot") PORT_BASE (18490: tollgate
# HTTP, +1 bare, +2 tollgate gRPC, +3 bare gRPC, +4 and +5 the other tollgate's) OUT
# (target/cpu) SKIP_BUILD (0) OTHER_TOLLGATE (unset) PACE_MS (unset: wrk sends as fast as
# the server answers; N: each wrk connection waits N ms before each request, the same
# offered load below saturation for every HTTP server, scripts/load/hot.lua).
#
# Processes started: examples/tokens (development issuer), examples/bare,
# examples/bare_grpc, target/release/tollgate serve (and OTHER_TOLLGATE serve), and each
# wrk or grpc_load run (bounded by its own duration, and by `timeout`). Every one is
# killed by its pid on exit, however the script ends.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-8}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
GRPC_CONNECTIONS=${GRPC_CONNECTIONS:-2}
GRPC_CONCURRENCY=${GRPC_CONCURRENCY:-32}
OTHER_TOLLGATE=${OTHER_TOLLGATE:-}
DEFAULT_WORKLOADS="http-bare http-hot http-none grpc-bare grpc-hot"
if [[ -n $OTHER_TOLLGATE ]]; then DEFAULT_WORKLOADS+=" http-other grpc-other"; fi
read -r -a WORKLOADS <<<"${WORKLOADS:-$DEFAULT_WORKLOADS}"
PORT_BASE=${PORT_BASE:-18490}
OUT=${OUT:-target/cpu}
SKIP_BUILD=${SKIP_BUILD:-0}
AUDIENCE=https://api.example.com
HOT_LUA=scripts/load/hot.lua

# shellcheck source=scripts/load/lib.sh
source scripts/load/lib.sh

TOLLGATE_PORT=$PORT_BASE
BARE_PORT=$((PORT_BASE + 1))
GRPC_PORT=$((PORT_BASE + 2))
BARE_GRPC_PORT=$((PORT_BASE + 3))
OTHER_PORT=$((PORT_BASE + 4))
OTHER_GRPC_PORT=$((PORT_BASE + 5))
TICKS=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of the process, all its threads (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name, which may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    awk '{print $12 + $13}' <<<"${stat##*) }"
}

# switches PID: context switches of the process's live threads, voluntary and not (a
# thread that parks for want of work and is woken again costs two).
switches() {
    cat "/proc/$1/task/"*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ {s += $2} END {print s + 0}'
}

# The server process each workload loads, and how to start its load generator.
declare -A R_REQ R_RPS R_CPU R_US R_CSW R_ERR R_MISS
server_of() {
    case $1 in
        http-bare) echo "$BARE_PID" ;;
        grpc-bare) echo "$BARE_GRPC_PID" ;;
        *-other) echo "$OTHER_PID" ;;
        *) echo "$TOLLGATE_PID" ;;
    esac
}

# load_start LABEL WORKLOAD DURATION: starts one bounded load generator run.
load_start() {
    local label=$1 workload=$2 secs
    secs=$(seconds "$3")
    LOAD_FILE="$OUT/$label.txt"
    case $workload in
        http-bare)
            start "$LOAD_FILE" timeout -s KILL $((secs + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" \
                -s "$HOT_LUA" "http://127.0.0.1:$BARE_PORT/auth/orders" -- "$WORK/tokens.txt"
            ;;
        http-hot | http-other)
            local port=$TOLLGATE_PORT
            [[ $workload == http-hot ]] || port=$OTHER_PORT
            start "$LOAD_FILE" timeout -s KILL $((secs + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" \
                -s "$HOT_LUA" "http://127.0.0.1:$port/auth/orders" -- "$WORK/tokens.txt"
            ;;
        http-none)
            start "$LOAD_FILE" timeout -s KILL $((secs + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" \
                -s "$HOT_LUA" "http://127.0.0.1:$TOLLGATE_PORT/auth/orders"
            ;;
        grpc-bare | grpc-hot | grpc-other)
            local port=$GRPC_PORT
            [[ $workload != grpc-bare ]] || port=$BARE_GRPC_PORT
            [[ $workload != grpc-other ]] || port=$OTHER_GRPC_PORT
            start "$LOAD_FILE" timeout -s KILL $((secs + 30)) "$BIN/examples/grpc_load" \
                --url "http://127.0.0.1:$port" --token-file "$WORK/tokens.txt" --duration "$secs" \
                --threads "$THREADS" --connections "$GRPC_CONNECTIONS" --concurrency "$GRPC_CONCURRENCY"
            ;;
        *) die "unknown workload $workload" ;;
    esac
    LOAD_PID=$LAST_PID
}

# run LABEL WORKLOAD DURATION: one run; records requests, req/s, server CPU and CPU per request.
run() {
    local label=$1 workload=$2 server ticks0 ticks1 switches0 miss0="" line field
    server=$(server_of "$workload")
    local TOLLGATE_PORT=$TOLLGATE_PORT
    [[ $workload != *-other ]] || TOLLGATE_PORT=$OTHER_PORT
    [[ $workload == *-bare ]] || miss0=$(metric tollgate_token_cache_misses_total)
    switches0=$(switches "$server")
    ticks0=$(cpu_ticks "$server")
    load_start "$label" "$workload" "$3"
    wait "$LOAD_PID" || die "the load generator failed for $label; see $LOAD_FILE"
    forget "$LOAD_PID"
    ticks1=$(cpu_ticks "$server")
    R_CSW[$label]=$(($(switches "$server") - switches0))
    line=$(grep '^RESULT ' "$LOAD_FILE") || die "no RESULT line for $label; see $LOAD_FILE"
    for field in $line; do
        case $field in
            requests=*) R_REQ[$label]=${field#*=} ;;
            rps=*) R_RPS[$label]=${field#*=} ;;
            status_errors=*) R_ERR[$label]=${field#*=} ;;
            socket_errors=*) R_ERR[$label]=$((${R_ERR[$label]} + ${field#*=})) ;;
        esac
    done
    ((${R_REQ[$label]} > 0)) || die "no requests completed in $label; see $LOAD_FILE"
    R_CPU[$label]=$(awk -v t=$((ticks1 - ticks0)) -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}')
    R_US[$label]=$(awk -v t=$((ticks1 - ticks0)) -v hz="$TICKS" -v n="${R_REQ[$label]}" \
        'BEGIN {printf "%.3f", t / hz / n * 1e6}')
    R_CSW[$label]=$(awk -v c="${R_CSW[$label]}" -v n="${R_REQ[$label]}" 'BEGIN {printf "%.3f", c / n}')
    [[ -z $miss0 ]] || R_MISS[$label]=$(($(metric tollgate_token_cache_misses_total) - miss0))
    # http-none is all 401s by design; elsewhere a 4xx/5xx or failed call spoils the run.
    [[ $workload == http-none || ${R_ERR[$label]} == 0 ]] || die "$label: ${R_ERR[$label]} errors; see $LOAD_FILE"
    printf '  %-14s %9.0f req/s  server CPU %6.2f s  %7.2f us/request  %5.3f switches/request%s\n' "$label" \
        "${R_RPS[$label]}" "${R_CPU[$label]}" "${R_US[$label]}" "${R_CSW[$label]}" "$(if [[ -n $miss0 ]]; then echo "  signature checks ${R_MISS[$label]}"; fi)"
}

# ---------------------------------------------------------------------------------------
# Preparation.

need_wrk
for port in "$TOLLGATE_PORT" "$BARE_PORT" "$GRPC_PORT" "$BARE_GRPC_PORT" "$OTHER_PORT" "$OTHER_GRPC_PORT"; do
    if port_in_use "$port"; then die "port $port is in use; set PORT_BASE"; fi
done
mkdir -p "$OUT"
if [[ $SKIP_BUILD != 1 ]]; then
    echo "== cargo build --release --examples --bins"
    cargo build --release --examples --bins
fi
BIN=target/release
for exe in tollgate examples/bare examples/bare_grpc examples/grpc_load examples/tokens; do
    [[ -x $BIN/$exe ]] || die "$BIN/$exe is missing; run without SKIP_BUILD=1"
done

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
start "$WORK/tokens.log" "$BIN/examples/tokens" --count 1 --out "$WORK/tokens.txt" --audience "$AUDIENCE"
TOKENS_PID=$LAST_PID
wait_for "$TOKENS_PID" 60 grep -q '^READY' "$WORK/tokens.log" || die "the issuer did not start: $(cat "$WORK/tokens.log")"
ISSUER=$(sed -n 's/^ISSUER=//p' "$WORK/tokens.log")

load_config "$WORK/tollgate.toml" "127.0.0.1:$TOLLGATE_PORT" "127.0.0.1:$GRPC_PORT"

echo "== starting tollgate (HTTP $TOLLGATE_PORT, gRPC $GRPC_PORT), bare ($BARE_PORT), bare_grpc ($BARE_GRPC_PORT)"
# tollgate reads TOLLGATE_* variables as settings: the TOLLGATE_PORT of this script is not one.
start "$OUT/tollgate.log" env -u TOLLGATE_PORT "$BIN/tollgate" serve --config "$WORK/tollgate.toml"
TOLLGATE_PID=$LAST_PID
start "$OUT/bare.log" "$BIN/examples/bare" "$BARE_PORT"
BARE_PID=$LAST_PID
start "$OUT/bare_grpc.log" "$BIN/examples/bare_grpc" "$BARE_GRPC_PORT"
BARE_GRPC_PID=$LAST_PID
wait_for "$TOLLGATE_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$TOLLGATE_PORT/readyz" ||
    die "tollgate did not get ready: $(cat "$OUT/tollgate.log")"
wait_for "$BARE_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$BARE_PORT/auth" || die "bare did not start"
wait_for "$BARE_GRPC_PID" 30 port_in_use "$BARE_GRPC_PORT" || die "bare_grpc did not start"
wait_for "$TOLLGATE_PID" 30 port_in_use "$GRPC_PORT" || die "tollgate's gRPC door did not open"
HOT=$(head -n 1 "$WORK/tokens.txt")
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[[ $(status "http://127.0.0.1:$TOLLGATE_PORT/auth/orders" -H "Authorization: Bearer $HOT") == 200 ]] ||
    die "tollgate refused the token"
if [[ -n $OTHER_TOLLGATE ]]; then
    [[ -x $OTHER_TOLLGATE ]] || die "OTHER_TOLLGATE=$OTHER_TOLLGATE is not an executable"
    sed -e "s/:$TOLLGATE_PORT\"/:$OTHER_PORT\"/" -e "s/:$GRPC_PORT\"/:$OTHER_GRPC_PORT\"/" \
        "$WORK/tollgate.toml" >"$WORK/other.toml"
    echo "== starting the other tollgate, $OTHER_TOLLGATE (HTTP $OTHER_PORT, gRPC $OTHER_GRPC_PORT)"
    start "$OUT/other.log" env -u TOLLGATE_PORT "$OTHER_TOLLGATE" serve --config "$WORK/other.toml"
    OTHER_PID=$LAST_PID
    wait_for "$OTHER_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$OTHER_PORT/readyz" ||
        die "the other tollgate did not get ready: $(cat "$OUT/other.log")"
    wait_for "$OTHER_PID" 30 port_in_use "$OTHER_GRPC_PORT" || die "the other tollgate's gRPC door did not open"
    [[ $(status "http://127.0.0.1:$OTHER_PORT/auth/orders" -H "Authorization: Bearer $HOT") == 200 ]] ||
        die "the other tollgate refused the token"
fi

# ---------------------------------------------------------------------------------------
# Warm-up, then interleaved rounds.

echo "== warm-up: $WARMUP each"
for w in "${WORKLOADS[@]}"; do run "warmup-$w" "$w" "$WARMUP"; done
echo "== $ROUNDS rounds of $DURATION per workload, order rotating each round${PACE_MS:+; HTTP paced: each connection waits ${PACE_MS} ms before each request}"
for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < ${#WORKLOADS[@]}; i++)); do
        w=${WORKLOADS[(i + r - 1) % ${#WORKLOADS[@]}]}
        run "$w#$r" "$w" "$DURATION"
    done
done

# ---------------------------------------------------------------------------------------
# Summary.

has() { [[ " ${WORKLOADS[*]} " == *" $1 "* ]]; }
col() { # col ARRAY WORKLOAD: that workload's value in every round
    local -n values=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do echo "${values[$2#$r]}"; done
}
round_ratios() { # round_ratios ARRAY A B: A/B in every round
    local -n values=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do ratio "${values[$2#$r]}" "${values[$3#$r]}"; done
}

{
    echo
    echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'); load average now $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "  server CPU per request, median of the per-round ratios (min..max over $ROUNDS rounds of $DURATION):"
    # shellcheck disable=SC2046
    {
        if has http-hot && has http-bare; then
            echo "    http-hot / http-bare    $(spread $(round_ratios R_US http-hot http-bare))   (goal: <= 1.2)"
        fi
        if has http-none && has http-bare; then
            echo "    http-none / http-bare   $(spread $(round_ratios R_US http-none http-bare))"
        fi
        if has grpc-hot && has grpc-bare; then
            echo "    grpc-hot / grpc-bare    $(spread $(round_ratios R_US grpc-hot grpc-bare))   (goal: <= 1.3)"
        fi
        if has http-hot && has http-other; then
            echo "    http-hot / http-other   $(spread $(round_ratios R_US http-hot http-other))   (this build / OTHER_TOLLGATE)"
        fi
        if has grpc-hot && has grpc-other; then
            echo "    grpc-hot / grpc-other   $(spread $(round_ratios R_US grpc-hot grpc-other))   (this build / OTHER_TOLLGATE)"
        fi
        if has http-other && has http-bare; then
            echo "    http-other / http-bare  $(spread $(round_ratios R_US http-other http-bare))"
        fi
        if has grpc-other && has grpc-bare; then
            echo "    grpc-other / grpc-bare  $(spread $(round_ratios R_US grpc-other grpc-bare))"
        fi
        if has grpc-hot && has http-hot; then
            echo "    grpc-hot / http-hot     $(spread $(round_ratios R_US grpc-hot http-hot))"
        fi
    }
    echo "  medians over rounds:"
    printf '    %-10s %12s %10s %18s %16s\n' workload us/request req/s "switches/request" "signature checks"
    for w in "${WORKLOADS[@]}"; do
        # shellcheck disable=SC2046
        printf '    %-10s %12.2f %10.0f %18.3f %16s\n' "$w" "$(median $(col R_US "$w"))" "$(median $(col R_RPS "$w"))" \
            "$(median $(col R_CSW "$w"))" "$(if [[ $w == *-bare ]]; then echo -; else col R_MISS "$w" | awk '{s += $1} END {print s}'; fi)"
    done
    echo "  raw runs are in $OUT/"
} | tee "$OUT/summary.txt"
