#!/usr/bin/env bash
# The fault scenarios of security-anchors.md §3 (S1–S10, S12–S14) at full length: the tests
# of tests/faults.rs with FAULTS_FULL=1 (minutes instead of seconds, millions instead of
# thousands, the contract's own timings), in a release build, one at a time.
#
#   scripts/faults.sh              # every scenario (about 45 minutes)
#   scripts/faults.sh s3 s5 s13    # these only
#
# Each scenario runs in a process group of its own, bounded in time: when its bound passes,
# the group (the test process and whatever it started: tollgate, redis-server, nginx) is
# killed by its id. The tests kill their own children by pid when they end. All traffic
# goes to 127.0.0.1. Prints, per scenario, a PASS or FAIL line with its wall time and the
# test's figures, and last `faults: N passed, M failed`. Logs stay in $FAULTS_LOGS (a temp
# dir by default).
set -u
cd "$(dirname "$0")/.."

# id, test name, bound in seconds.
SCENARIOS="
s1 s1_jwks_outage_with_warm_keys_fails_no_valid_request 1000
s2 s2_cold_start_with_the_issuer_down_answers_503_until_ready 240
s3 s3_slow_issuer_is_abandoned_at_the_timeout_and_cached_checks_keep_their_latency 300
s4 s4_key_rotation_fetches_once_and_fails_no_valid_request 300
s5 s5_unknown_kid_flood_is_held_to_the_cooldown 400
s6 s6_poisoned_refresh_keeps_the_previous_keys_and_memory_flat 900
s7 s7_garbage_token_flood_leaves_cache_memory_and_issuer_alone 900
s8 s8_valid_token_churn_keeps_the_cache_bounded_and_never_serves_expired 1200
s9 s9_replay_store_flood_stays_within_the_window_and_refuses_at_the_cap 400
s10 s10_replicas_share_redis_and_refuse_dpop_while_it_is_down 300
s12 s12_a_cached_token_is_refused_from_its_exp_on 120
s13 s13_slowloris_connections_are_cut_at_the_header_timeout 700
s14 s14_refusals_reach_the_client_unchanged_through_nginx 180
"

wanted=" $* "
logs="${FAULTS_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/tollgate-faults.XXXXXX")}"
mkdir -p "$logs"

echo "building (release) ..."
build_log="$logs/build.log"
if ! cargo test --release --test faults --no-run >"$build_log" 2>&1; then
    cat "$build_log"
    echo "faults: build failed"
    exit 1
fi
binary=$(sed -n 's/.*Executable tests\/faults.rs (\(.*\))$/\1/p' "$build_log" | tail -n 1)
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
    echo "faults: cannot find the test binary in $build_log"
    exit 1
fi

passed=0
failed=0
current=""
cleanup() {
    # Interrupted: kill the running scenario's group by its id.
    if [ -n "$current" ]; then kill -KILL -- "-$current" 2>/dev/null; fi
    exit 130
}
trap cleanup INT TERM

while read -r id name bound; do
    [ -z "$id" ] && continue
    if [ -n "${*:-}" ] && [[ "$wanted" != *" $id "* ]]; then continue; fi
    log="$logs/$id.log"
    started=$(date +%s)
    FAULTS_FULL=1 setsid "$binary" "$name" --exact --nocapture --test-threads=1 >"$log" 2>&1 &
    current=$!
    outcome=""
    while kill -0 "$current" 2>/dev/null; do
        if [ $(($(date +%s) - started)) -ge "$bound" ]; then
            kill -TERM -- "-$current" 2>/dev/null
            sleep 2
            kill -KILL -- "-$current" 2>/dev/null
            outcome="FAIL (killed after its ${bound} s bound)"
            break
        fi
        sleep 1
    done
    wait "$current"
    status=$?
    current=""
    took=$(($(date +%s) - started))
    if [ -z "$outcome" ]; then
        if [ "$status" -eq 0 ] && grep -q "test result: ok. 1 passed" "$log"; then outcome="PASS"; else outcome="FAIL"; fi
    fi
    case "$outcome" in PASS) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
    echo "$id: $outcome in ${took} s"
    grep -o "FIGURES .*" "$log" | sed 's/^FIGURES /    /'
    if [ "$outcome" != "PASS" ]; then
        grep -A3 "panicked at" "$log" | head -n 8 | sed 's/^/    /'
        echo "    log: $log"
    fi
done <<EOF
$SCENARIOS
EOF

echo "faults: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
