#!/usr/bin/env bash
# Load runs on loopback with wrk: tollgate's /auth side by side with a bare axum server
# (examples/bare.rs), so that every figure can be read as a ratio taken in the same run.
# See docs/performance.md for what is measured and how to read it.
#
#   scripts/load.sh                  # build, then everything (about 3 minutes)
#   FILL=0 ROUNDS=3 scripts/load.sh  # skip the 100k cache fill, fewer rounds
#
# Five workloads, all GET /auth/orders (Envoy dialect: the path after /auth is checked):
#   bare    examples/bare.rs: 200 and three fixed headers, no work at all (the baseline)
#   hot     tollgate, one valid token on every request (cache hits)
#   rotate  tollgate, ROTATE distinct valid tokens in turn (cache hits, larger working set)
#   none    tollgate, no Authorization header (401 with challenges and a JSON body)
#   dpop    tollgate, Authorization: DPoP <one bound token> and a new ES256 proof on every
#           request (token cached; every proof verified, then recorded by the replay store).
#           Proofs are minted just before each run (examples/tokens --proofs-only), about
#           DPOP_HEADROOM times what the fastest earlier run sent, and each is sent once
#           (scripts/load/dpop.lua). A run counts only if tollgate refused nothing (no replay,
#           no full replay store) and no thread ran out of proofs. DPOP=0 leaves it out.
# On a shared machine a neighbour's burst can land on any one run, so after one warm-up
# run each, the workloads are measured in ROUNDS short rounds, interleaved and in a
# rotating order; the summary gives medians over rounds and the median of the per-round
# ratios. Then a fresh tollgate is sent FILL distinct tokens once each (every one a
# signature check) and its RSS is read.
#
# Knobs (environment): DURATION (2s) WARMUP (3s) ROUNDS (10) THREADS (2) CONNECTIONS (32)
# ROTATE (10000) FILL (100000; 0 skips) FILL_LIMIT (180s) BARE_PORT (18481)
# TOLLGATE_PORT (18480) OUT (target/load) SKIP_BUILD (0) DPOP (1; 0 skips) DPOP_HEADROOM
# (1.5) DPOP_GUESS (40000: proofs/s assumed for the first run) DPOP_BUDGET (900000: most
# proofs one tollgate is sent; its replay store holds 1,000,000 and keeps each for 330 s).
#
# Processes started: examples/tokens (development issuer + minter), examples/bare,
# target/release/tollgate serve, and wrk. Each is killed by its pid on exit, however the
# script ends. Raw wrk output is kept in $OUT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-2s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
ROTATE=${ROTATE:-10000}
FILL=${FILL:-100000}
FILL_LIMIT=${FILL_LIMIT:-180s}
BARE_PORT=${BARE_PORT:-18481}
TOLLGATE_PORT=${TOLLGATE_PORT:-18480}
OUT=${OUT:-target/load}
SKIP_BUILD=${SKIP_BUILD:-0}
AUDIENCE=https://api.example.com
DPOP=${DPOP:-1}
DPOP_HEADROOM=${DPOP_HEADROOM:-1.5}
DPOP_GUESS=${DPOP_GUESS:-40000}
DPOP_BUDGET=${DPOP_BUDGET:-900000}
HOT_LUA=scripts/load/hot.lua
ROTATE_LUA=scripts/load/rotate.lua
DPOP_LUA=scripts/load/dpop.lua

# Process bookkeeping (every pid started is killed on exit), waiting, medians and ratios.
# shellcheck source=scripts/load/lib.sh
source scripts/load/lib.sh

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# ---------------------------------------------------------------------------------------
# wrk runs. Each result is the RESULT line of scripts/load/report.lua, kept in R_*.

declare -A R_RPS R_P50 R_P99 R_REQ R_ERR R_SOCK R_MISS
# DPoP runs: proofs minted, sent, overrun requests, exhausted (0/1), replays and store-full
# refusals counted by tollgate, allows; R_INVALID marks a run left out of the summary.
declare -A R_DPROOFS R_DSENT R_DOVER R_DEXH R_DREPLAY R_DFULL R_DALLOW R_INVALID

# wrk_start LABEL DURATION URL SCRIPT [SCRIPT ARGS...]: starts one bounded wrk run.
wrk_start() {
    local label=$1 duration=$2 url=$3 script=$4
    shift 4
    WRK_FILE="$OUT/wrk-$label.txt"
    start "$WRK_FILE" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency -s "$script" "$url" -- "$@"
    WRK_PID=$LAST_PID
}

# wrk_finish LABEL: waits for the run started last and records its RESULT line.
wrk_finish() {
    local label=$1 line field value
    wait "$WRK_PID" || die "wrk failed for $label; see $WRK_FILE"
    forget "$WRK_PID"
    line=$(grep '^RESULT ' "$WRK_FILE") || die "no RESULT line for $label; see $WRK_FILE"
    for field in $line; do
        value=${field#*=}
        case $field in
            rps=*) R_RPS[$label]=$value ;;
            p50_us=*) R_P50[$label]=$value ;;
            p99_us=*) R_P99[$label]=$value ;;
            requests=*) R_REQ[$label]=$value ;;
            status_errors=*) R_ERR[$label]=$value ;;
            socket_errors=*) R_SOCK[$label]=$value ;;
        esac
    done
}

# show LABEL: one line for a finished run.
show() {
    local label=$1 checks=""
    [[ -z ${R_MISS[$label]:-} ]] || checks="  signature checks ${R_MISS[$label]}"
    printf '  %-15s %9.0f req/s  p50 %6d us  p99 %6d us  4xx/5xx %8d  socket errors %d%s\n' \
        "$label" "${R_RPS[$label]}" "${R_P50[$label]}" "${R_P99[$label]}" "${R_ERR[$label]}" "${R_SOCK[$label]}" \
        "$checks"
    if [[ -n ${R_DPROOFS[$label]:-} ]]; then
        printf '  %-15s proofs %d, sent %d, replays refused %d, store full %d, exhausted %d%s\n' "" \
            "${R_DPROOFS[$label]}" "${R_DSENT[$label]}" "${R_DREPLAY[$label]}" "${R_DFULL[$label]}" \
            "${R_DEXH[$label]}" "$(if [[ ${R_INVALID[$label]:-0} == 1 ]]; then echo "  NOT VALID"; fi)"
    fi
}

# DPoP bookkeeping: the fastest valid rate so far (proofs/s), and the proofs tollgate has
# accepted since it started (each one a replay store entry for 330 s).
DPOP_RATE=$DPOP_GUESS
DPOP_ACCEPTED=0
REPLAYED='tollgate_checks_total{door="http",outcome="deny",reason="proof_replayed"}'
STORE_FULL='tollgate_checks_total{door="http",outcome="error",reason="replay_store_full"}'
ALLOWED='tollgate_checks_total{door="http",outcome="allow",reason="none"}'

# mint_proofs N FILE: the bound token and N fresh proofs for GET $DPOP_HTU into FILE.
mint_proofs() {
    "$BIN/examples/tokens" --proofs-only --dpop-key "$WORK/dpop.pem" --dpop-token "$WORK/dpop-token.txt" \
        --dpop-url "$DPOP_HTU" --dpop-proofs "$1" --dpop-out "$2" >"$WORK/mint.log" 2>&1 ||
        die "minting proofs failed: $(cat "$WORK/mint.log")"
}

# dpop_run LABEL DURATION: one DPoP run with as many fresh proofs as it may need.
dpop_run() {
    local label=$1 duration=$2 n expected line field replayed0 full0 allowed0 rps
    n=$(awk -v h="$DPOP_HEADROOM" -v s="$(seconds "$duration")" -v r="$DPOP_RATE" 'BEGIN {printf "%d", h * s * r + 1}')
    expected=$(awk -v s="$(seconds "$duration")" -v r="$DPOP_RATE" 'BEGIN {printf "%d", s * r}')
    if ((DPOP_ACCEPTED + expected > DPOP_BUDGET)); then
        echo "  $label: skipped, tollgate has accepted $DPOP_ACCEPTED proofs (budget $DPOP_BUDGET)"
        return 1
    fi
    mint_proofs "$n" "$WORK/dpop-run.txt"
    replayed0=$(metric "$REPLAYED")
    full0=$(metric "$STORE_FULL")
    allowed0=$(metric "$ALLOWED")
    wrk_start "$label" "$duration" "$AUTH_URL" "$DPOP_LUA" "$WORK/dpop-run.txt" "$THREADS"
    wrk_finish "$label"
    rm -f "$WORK/dpop-run.txt"
    line=$(grep '^DPOP ' "$WRK_FILE") || die "no DPOP line for $label; see $WRK_FILE"
    for field in $line; do
        case $field in
            proofs=*) R_DPROOFS[$label]=${field#*=} ;;
            sent=*) R_DSENT[$label]=${field#*=} ;;
            overrun=*) R_DOVER[$label]=${field#*=} ;;
            exhausted=*) R_DEXH[$label]=${field#*=} ;;
        esac
    done
    R_DREPLAY[$label]=$(($(metric "$REPLAYED") - replayed0))
    R_DFULL[$label]=$(($(metric "$STORE_FULL") - full0))
    R_DALLOW[$label]=$(($(metric "$ALLOWED") - allowed0))
    DPOP_ACCEPTED=$((DPOP_ACCEPTED + ${R_DALLOW[$label]}))
    rps=${R_RPS[$label]}
    if ((${R_DEXH[$label]} != 0)); then
        # It ran out: the rate is a floor. Ask for twice as many next time.
        rps=$(awk -v r="$rps" 'BEGIN {print 2 * r}')
    fi
    if ((${R_DEXH[$label]} + ${R_DREPLAY[$label]} + ${R_DFULL[$label]} + ${R_ERR[$label]} != 0)); then
        R_INVALID[$label]=1
    fi
    DPOP_RATE=$(awk -v a="$DPOP_RATE" -v b="$rps" 'BEGIN {print (b > a ? b : a)}')
    if [[ $label == warmup-* ]]; then DPOP_RATE=$rps; fi
    return 0
}

# workload NAME LABEL DURATION: one run of a named workload. Against tollgate, records
# how many signature checks (cache misses) it caused.
workload() {
    local name=$1 label=$2 duration=$3 miss0=""
    [[ $name == bare ]] || miss0=$(metric tollgate_token_cache_misses_total)
    case $name in
        bare) wrk_start "$label" "$duration" "$BARE_URL" "$HOT_LUA" "$WORK/tokens.txt" ;;
        hot) wrk_start "$label" "$duration" "$AUTH_URL" "$HOT_LUA" "$WORK/tokens.txt" ;;
        rotate) wrk_start "$label" "$duration" "$AUTH_URL" "$ROTATE_LUA" "$WORK/rotate.txt" "$THREADS" ;;
        none) wrk_start "$label" "$duration" "$AUTH_URL" "$HOT_LUA" ;;
        dpop) dpop_run "$label" "$duration" || return 0 ;;
    esac
    [[ $name == dpop ]] || wrk_finish "$label"
    [[ -z $miss0 ]] || R_MISS[$label]=$(($(metric tollgate_token_cache_misses_total) - miss0))
    show "$label"
}

# ---------------------------------------------------------------------------------------
# Preparation.

need_wrk
for port in "$BARE_PORT" "$TOLLGATE_PORT"; do
    if port_in_use "$port"; then die "port $port is in use; set BARE_PORT / TOLLGATE_PORT"; fi
done
mkdir -p "$OUT"

if [[ $SKIP_BUILD != 1 ]]; then
    echo "== cargo build --release --examples --bins"
    cargo build --release --examples --bins
fi
BIN=target/release
for exe in "$BIN/tollgate" "$BIN/examples/bare" "$BIN/examples/tokens"; do
    [[ -x $exe ]] || die "$exe is missing; run without SKIP_BUILD=1"
done

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"

MINT=$ROTATE
if ((FILL > MINT)); then MINT=$FILL; fi
echo "== minting $MINT RS256 tokens (examples/tokens)"
# The URL tollgate rebuilds for GET /auth/orders (Envoy dialect, Host and the default http).
DPOP_HTU="http://127.0.0.1:$TOLLGATE_PORT/orders"
DPOP_ARGS=()
if [[ $DPOP == 1 ]]; then
    DPOP_ARGS=(--dpop-key "$WORK/dpop.pem" --dpop-out "$WORK/dpop-token.txt" --dpop-url "$DPOP_HTU")
fi
start "$WORK/tokens.log" "$BIN/examples/tokens" --count "$MINT" --out "$WORK/tokens.txt" --audience "$AUDIENCE" \
    "${DPOP_ARGS[@]}"
TOKENS_PID=$LAST_PID
wait_for "$TOKENS_PID" 1200 grep -q '^READY' "$WORK/tokens.log" || die "token minting failed: $(cat "$WORK/tokens.log")"
ISSUER=$(sed -n 's/^ISSUER=//p' "$WORK/tokens.log")
MINTED=$(grep '^MINTED' "$WORK/tokens.log")
echo "  $MINTED"
head -n "$ROTATE" "$WORK/tokens.txt" >"$WORK/rotate.txt"
head -n "$FILL" "$WORK/tokens.txt" >"$WORK/fill.txt"

load_config "$WORK/tollgate.toml" "127.0.0.1:$TOLLGATE_PORT"

start_tollgate() {
    # tollgate reads TOLLGATE_* variables as settings: the TOLLGATE_PORT knob is not one.
    start "$OUT/tollgate.log" env -u TOLLGATE_PORT "$BIN/tollgate" serve --config "$WORK/tollgate.toml"
    TOLLGATE_PID=$LAST_PID
    wait_for "$TOLLGATE_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$TOLLGATE_PORT/readyz" ||
        die "tollgate did not get ready: $(cat "$OUT/tollgate.log")"
    sleep 1
}

echo "== starting bare (port $BARE_PORT) and tollgate (port $TOLLGATE_PORT)"
start "$OUT/bare.log" "$BIN/examples/bare" "$BARE_PORT"
BARE_PID=$LAST_PID
wait_for "$BARE_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$BARE_PORT/auth" || die "bare did not start"
start_tollgate
RSS_IDLE=$(rss_kb "$TOLLGATE_PID")

BARE_URL="http://127.0.0.1:$BARE_PORT/auth/orders"
AUTH_URL="http://127.0.0.1:$TOLLGATE_PORT/auth/orders"
HOT=$(head -n 1 "$WORK/tokens.txt")
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[[ $(status "$AUTH_URL" -H "Authorization: Bearer $HOT") == 200 ]] || die "tollgate refused the hot token"
[[ $(status "$AUTH_URL") == 401 ]] || die "tollgate did not answer 401 without a token"
[[ $(status "$BARE_URL") == 200 ]] || die "bare did not answer 200"
if [[ $DPOP == 1 ]]; then
    # One proof, twice: allowed, then refused as a replay (so a run with 0 refusals had none).
    mint_proofs 1 "$WORK/dpop-check.txt"
    echo "  proof minting: $(cat "$WORK/mint.log")"
    dpop_status() {
        status "$AUTH_URL" -H "Authorization: DPoP $(sed -n 1p "$WORK/dpop-check.txt")" \
            -H "DPoP: $(sed -n 2p "$WORK/dpop-check.txt")"
    }
    [[ $(dpop_status) == 200 ]] || die "tollgate refused a fresh DPoP proof"
    [[ $(dpop_status) == 401 && $(metric "$REPLAYED") == 1 ]] || die "tollgate did not refuse a replayed proof"
    DPOP_ACCEPTED=1
fi

# ---------------------------------------------------------------------------------------
# Warm-up, then interleaved rounds.

WORKLOADS=(bare hot rotate none)
if [[ $DPOP == 1 ]]; then WORKLOADS+=(dpop); fi
echo "== warm-up: $WARMUP each ($THREADS threads, $CONNECTIONS connections); rotate caches all $ROTATE tokens here"
for w in "${WORKLOADS[@]}"; do
    workload "$w" "warmup-$w" "$WARMUP"
    if [[ $w == rotate ]]; then RSS_ROTATE_FIRST=$(rss_kb "$TOLLGATE_PID"); fi
done
echo "== $ROUNDS rounds of $DURATION per workload, order rotating each round"
for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < ${#WORKLOADS[@]}; i++)); do
        w=${WORKLOADS[(i + r - 1) % ${#WORKLOADS[@]}]}
        workload "$w" "$w#$r" "$DURATION"
    done
done
RSS_ROUNDS=$(rss_kb "$TOLLGATE_PID")
HWM_ROUNDS=$(hwm_kb "$TOLLGATE_PID")
DPOP_ROUNDS_ACCEPTED=$DPOP_ACCEPTED

# ---------------------------------------------------------------------------------------
# Cache fill: a fresh tollgate, every one of FILL distinct tokens sent once (all misses).

if ((FILL > 0)); then
    echo "== cache fill: fresh tollgate, $FILL distinct tokens, each sent once"
    stop "$TOLLGATE_PID"
    start_tollgate
    RSS_FILL_IDLE=$(rss_kb "$TOLLGATE_PID")
    miss0=$(metric tollgate_token_cache_misses_total)
    # wrk always sleeps its whole -d, even once every thread has stopped; SIGINT ends it
    # early with the real elapsed time, as soon as tollgate has checked every token.
    wrk_start fill "$FILL_LIMIT" "$AUTH_URL" "$ROTATE_LUA" "$WORK/fill.txt" "$THREADS" once
    while kill -0 "$WRK_PID" 2>/dev/null && (($(metric tollgate_token_cache_misses_total) - miss0 < FILL)); do
        sleep 0.05
    done
    kill -INT "$WRK_PID" 2>/dev/null || true
    wrk_finish fill
    R_MISS[fill]=$(($(metric tollgate_token_cache_misses_total) - miss0))
    show fill
    sleep 1
    RSS_FILL=$(rss_kb "$TOLLGATE_PID")
    HWM_FILL=$(hwm_kb "$TOLLGATE_PID")
    # Right after, in the same moment's conditions: the baseline and a hot token on the
    # full cache.
    workload bare bare-after-fill "$DURATION"
    workload hot hot-after-fill "$DURATION"
fi

# ---------------------------------------------------------------------------------------
# Summary.

valid() { # valid LABEL: the run happened and counts
    [[ -n ${R_RPS[$1]:-} && ${R_INVALID[$1]:-0} != 1 ]]
}
col() { # col ARRAY WORKLOAD: that workload's value in every round where it is valid
    local -n values=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do if valid "$2#$r"; then echo "${values[$2#$r]}"; fi; done
}
round_ratios() { # round_ratios ARRAY A B: A/B in every round where both are valid
    local -n values=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        if valid "$2#$r" && valid "$3#$r"; then ratio "${values[$2#$r]}" "${values[$3#$r]}"; fi
    done
}
dpop_sum() { # dpop_sum ARRAY: total over every DPoP run, warm-up included
    local -n values=$1
    local label total=0
    for label in "${!R_DPROOFS[@]}"; do total=$((total + ${values[$label]})); done
    echo "$total"
}

{
    echo
    echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'); load average now $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "  $MINTED"
    echo "  medians over $ROUNDS rounds of $DURATION ($THREADS wrk threads, $CONNECTIONS connections):"
    printf '  %-8s %10s %8s %8s %10s %s\n' workload req/s p50_us p99_us 4xx/5xx "signature checks"
    for w in "${WORKLOADS[@]}"; do
        # shellcheck disable=SC2046
        printf '  %-8s %10.0f %8d %8d %10d %s\n' "$w" "$(median $(col R_RPS "$w"))" "$(median $(col R_P50 "$w"))" \
            "$(median $(col R_P99 "$w"))" "$(median $(col R_ERR "$w"))" \
            "$(if [[ $w == bare ]]; then echo -; else col R_MISS "$w" | awk '{s += $1} END {print s}'; fi)"
    done
    echo "  ratios, median of the per-round ratios (min..max over rounds):"
    # shellcheck disable=SC2046
    {
        echo "    bare/hot req/s     $(spread $(round_ratios R_RPS bare hot))   (goal: <= 1.5)"
        echo "    hot/bare p50       $(spread $(round_ratios R_P50 hot bare))"
        echo "    hot/bare p99       $(spread $(round_ratios R_P99 hot bare))"
        echo "    hot/rotate req/s   $(spread $(round_ratios R_RPS hot rotate))   (goal: <= 2)"
        echo "    rotate/hot p50     $(spread $(round_ratios R_P50 rotate hot))"
        echo "    rotate/hot p99     $(spread $(round_ratios R_P99 rotate hot))"
        echo "    bare/rotate req/s  $(spread $(round_ratios R_RPS bare rotate))"
        echo "    bare/none req/s    $(spread $(round_ratios R_RPS bare none))"
        echo "    none/bare p50      $(spread $(round_ratios R_P50 none bare))"
        if [[ $DPOP == 1 ]]; then
            echo "    hot/dpop req/s     $(spread $(round_ratios R_RPS hot dpop))"
            echo "    dpop/hot p50       $(spread $(round_ratios R_P50 dpop hot))"
            echo "    bare/dpop req/s    $(spread $(round_ratios R_RPS bare dpop))"
        fi
    }
    if [[ $DPOP == 1 ]]; then
        valid_dpop=$(col R_RPS dpop | wc -l)
        echo "  dpop: $valid_dpop of $ROUNDS rounds valid; over every DPoP run (warm-up included):" \
            "$(dpop_sum R_DPROOFS) proofs minted, $(dpop_sum R_DSENT) sent, $(dpop_sum R_DALLOW) allowed," \
            "$(dpop_sum R_DREPLAY) replays refused, $(dpop_sum R_DFULL) refused as store full," \
            "$(dpop_sum R_DEXH) runs out of proofs, $(dpop_sum R_ERR) 4xx/5xx"
        echo "    proofs minted with examples/tokens --proofs-only: $(cat "$WORK/mint.log")"
    fi
    echo "  tollgate RSS: idle $(mb "$RSS_IDLE") MB; after the $ROTATE-token warm-up $(mb "$RSS_ROTATE_FIRST") MB;" \
        "after all rounds $(mb "$RSS_ROUNDS") MB (peak $(mb "$HWM_ROUNDS") MB)" \
        "$(if [[ $DPOP == 1 ]]; then echo "with $DPOP_ROUNDS_ACCEPTED DPoP proofs in the replay store"; fi)"
    if ((FILL > 0)); then
        echo "  cache fill (fresh tollgate): ${R_REQ[fill]} requests, ${R_MISS[fill]} signature checks," \
            "$(printf '%.0f' "${R_RPS[fill]}") req/s, p50 ${R_P50[fill]} us, p99 ${R_P99[fill]} us"
        echo "    right after: bare $(printf '%.0f' "${R_RPS[bare-after-fill]}") req/s," \
            "hot on the full cache $(printf '%.0f' "${R_RPS[hot-after-fill]}") req/s;" \
            "hot/fill req/s $(ratio "${R_RPS[hot-after-fill]}" "${R_RPS[fill]}")," \
            "bare/fill req/s $(ratio "${R_RPS[bare-after-fill]}" "${R_RPS[fill]}")," \
            "bare/hot req/s $(ratio "${R_RPS[bare-after-fill]}" "${R_RPS[hot-after-fill]}")"
        echo "  tollgate RSS (fresh process): idle $(mb "$RSS_FILL_IDLE") MB; with $FILL tokens cached" \
            "$(mb "$RSS_FILL") MB (peak $(mb "$HWM_FILL") MB); $(awk -v a="$RSS_FILL" -v b="$RSS_FILL_IDLE" \
                -v n="${R_MISS[fill]}" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}') bytes per cached token" \
            "(goal: < 30 MB)"
    fi
    echo "  raw rounds are in $OUT/wrk-*.txt"
} | tee "$OUT/summary.txt"
