#!/usr/bin/env bash
# Soak (issue 14): a release tollgate behind real nginx, both running the shipped
# deploy/nginx files (only their addresses replaced, plus a public route and a quieter log
# level), under steady mixed traffic for MINUTES (default 30): valid Bearer tokens
# (re-minted as they expire), expired ones, bad signatures, unknown kids, DPoP with fresh
# proofs and with replays, a public route. Every 10 s: tollgate's RSS, open fds and threads,
# its replay-store and token-cache entries (when /metrics exports them), and the window's
# p50/p99 as the client saw them, into a CSV drawn with gnuplot. The verdict compares the
# two halves of the warm part of the run; growth beyond the tolerances (or any unexpected
# answer) fails the script (exit 1). At the end tollgate gets SIGTERM and must exit 0 within
# its drain bound. See docs/soak.md for the figures of the last full run.
#
#   scripts/soak.sh              # 30 minutes
#   scripts/soak.sh 0.5          # a 30-second smoke run (too short for a growth verdict)
#   PUBLISH=1 scripts/soak.sh    # also copy the PNG and CSV to docs/soak.png, docs/soak.csv
#
# Knobs (environment): SOAK_RATE (200 requests/s) SOAK_CONCURRENCY (64) SOAK_WARMUP
# (minutes left out of the verdict; default 6.5, at most half the run) SOAK_RSS_KB (2048)
# SOAK_RSS_PCT (5) SOAK_FDS (8) SOAK_PORT_BASE (18490: tollgate, nginx, API and issuer take
# four ports from it) OUT (target/soak) SKIP_BUILD (0) PUBLISH (0).
#
# Processes started, each killed by its pid on exit however the script ends: the driver
# (target/release/examples/soak: the issuer, the API and the load), target/release/tollgate
# and nginx. Needs nginx, curl and gnuplot (installed with apt-get when run as root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MINUTES=${1:-30}
[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "usage: scripts/soak.sh [MINUTES]" >&2; exit 2; }
RATE=${SOAK_RATE:-200}
CONCURRENCY=${SOAK_CONCURRENCY:-64}
BASE=${SOAK_PORT_BASE:-18490}
OUT=${OUT:-target/soak}
SKIP_BUILD=${SKIP_BUILD:-0}
PUBLISH=${PUBLISH:-0}
TOLLGATE_LISTEN=$BASE
NGINX_PORT=$((BASE + 1))
API_PORT=$((BASE + 2))
ISSUER_PORT=$((BASE + 3))

# Process bookkeeping (every pid started is killed on exit), waiting, die, port_in_use.
# shellcheck source=scripts/load/lib.sh
source scripts/load/lib.sh

need curl curl
need gnuplot gnuplot-nox
NGINX=$(command -v nginx || true)
[[ -z $NGINX ]] && for d in /usr/sbin /usr/local/sbin; do [[ -x $d/nginx ]] && NGINX=$d/nginx; done
if [[ -z $NGINX ]]; then need nginx nginx; NGINX=$(command -v nginx || echo /usr/sbin/nginx); fi

for port in "$TOLLGATE_LISTEN" "$NGINX_PORT" "$API_PORT" "$ISSUER_PORT"; do
    if port_in_use "$port"; then die "port $port is in use; set SOAK_PORT_BASE"; fi
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ $SKIP_BUILD != 1 ]]; then
    echo "== cargo build --release --bin tollgate --example soak"
    cargo build --release --bin tollgate --example soak
fi
BIN=target/release
for exe in "$BIN/tollgate" "$BIN/examples/soak"; do [[ -x $exe ]] || die "$exe is missing; run without SKIP_BUILD=1"; done

# ---------------------------------------------------------------------------------------
# The driver first: it is the issuer tollgate fetches keys from and the API nginx proxies to.

echo "== soak: $MINUTES min at $RATE requests/s; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
WARMUP_ARGS=()
[[ -n ${SOAK_WARMUP:-} ]] && WARMUP_ARGS=(--warmup-minutes "$SOAK_WARMUP")
start "$OUT/driver.log" "$BIN/examples/soak" --minutes "$MINUTES" --rate "$RATE" --concurrency "$CONCURRENCY" \
    --issuer-port "$ISSUER_PORT" --api-port "$API_PORT" --target "http://127.0.0.1:$NGINX_PORT" \
    --metrics "http://127.0.0.1:$TOLLGATE_LISTEN/metrics" --pid-file "$WORK/tollgate.pid" \
    --csv "$OUT/soak.csv" --summary "$OUT/summary.txt" --rss-tolerance-kb "${SOAK_RSS_KB:-2048}" \
    --rss-tolerance-pct "${SOAK_RSS_PCT:-5}" --fd-tolerance "${SOAK_FDS:-8}" "${WARMUP_ARGS[@]}"
DRIVER_PID=$LAST_PID
wait_for "$DRIVER_PID" 60 grep -q '^READY' "$OUT/driver.log" || die "the driver did not start: $(cat "$OUT/driver.log")"

# ---------------------------------------------------------------------------------------
# tollgate: the shipped deploy/nginx/tollgate.toml with the issuer and listen replaced.

# replace TEXT OLD NEW COUNT: TEXT with OLD replaced by NEW; OLD must be on exactly COUNT lines.
replace() {
    local text=$1 old=$2 new=$3 count=$4 found
    found=$(grep -cF -- "$old" <<<"$text" || true)
    [[ $found == "$count" ]] || die "shipped file changed: '$old' occurs $found times, not $count"
    printf '%s\n' "${text//"$old"/"$new"}"
}
toml=$(cat deploy/nginx/tollgate.toml)
toml=$(replace "$toml" 'listen = "127.0.0.1:8080"' "listen = \"127.0.0.1:$TOLLGATE_LISTEN\"" 1)
toml=$(replace "$toml" 'domain = "YOUR-TENANT.auth0.com"' "url = \"http://127.0.0.1:$ISSUER_PORT/\"" 1)
cat >"$WORK/tollgate.toml" <<EOF
$toml

[[routes]]
path_prefix = "/public"
public = true

[log]
level = "warn"
EOF
"$BIN/tollgate" check --config "$WORK/tollgate.toml" >"$OUT/tollgate-check.txt" 2>&1 ||
    die "the soak config does not load: $(cat "$OUT/tollgate-check.txt")"
start "$OUT/tollgate.log" "$BIN/tollgate" serve --config "$WORK/tollgate.toml"
TOLLGATE_PID=$LAST_PID
wait_for "$TOLLGATE_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$TOLLGATE_LISTEN/readyz" ||
    die "tollgate did not get ready: $(cat "$OUT/tollgate.log")"

# ---------------------------------------------------------------------------------------
# nginx: the shipped deploy/nginx/tollgate.conf with its three addresses replaced.

mkdir -p "$WORK/nginx"
chmod 755 "$WORK" "$WORK/nginx"
conf=$(cat deploy/nginx/tollgate.conf)
conf=$(replace "$conf" '127.0.0.1:8080' "127.0.0.1:$TOLLGATE_LISTEN" 2)
conf=$(replace "$conf" '127.0.0.1:3000' "127.0.0.1:$API_PORT" 2)
conf=$(replace "$conf" 'listen 8000;' "listen 127.0.0.1:$NGINX_PORT;" 1)
printf '%s\n' "$conf" >"$WORK/nginx/tollgate.conf"
d=$WORK/nginx
cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    include $d/tollgate.conf;
}
EOF
start "$OUT/nginx.log" "$NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf"
NGINX_PID=$LAST_PID
wait_for "$NGINX_PID" 30 curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/public/ready" ||
    die "nginx did not start: $(cat "$OUT/nginx.log" "$d/error.log" 2>/dev/null)"

# Go: the driver starts its clock once it reads the pid.
echo "$TOLLGATE_PID" >"$WORK/tollgate.pid"
echo "== running; samples every 10 s in $OUT/soak.csv, progress in $OUT/driver.log"
set +e
wait "$DRIVER_PID"
driver_status=$?
set -e
forget "$DRIVER_PID"
tail -n +3 "$OUT/driver.log" | grep -v '^t=' || true

# ---------------------------------------------------------------------------------------
# The end: a graceful stop within its bound, and the figure.

term_started=$(date +%s.%N)
kill -TERM "$TOLLGATE_PID"
set +e
wait "$TOLLGATE_PID"
tollgate_status=$?
set -e
forget "$TOLLGATE_PID"
term_took=$(awk -v a="$term_started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "  tollgate stopped on SIGTERM in $term_took s with status $tollgate_status (bound: drain_delay + drain_timeout, 15 s)" |
    tee -a "$OUT/summary.txt"
stop "$NGINX_PID"

entries=$(awk -F, 'NR > 1 && ($5 != "" || $6 != "") {found = 1} END {print found + 0}' "$OUT/soak.csv")
title="tollgate soak: $MINUTES min at $RATE requests/s through nginx"
gnuplot -e "csv='$OUT/soak.csv'; png='$OUT/soak.png'; title='$title'; have_entries=$entries" scripts/soak/plot.gp ||
    die "gnuplot failed"
echo "  figure: $OUT/soak.png; samples: $OUT/soak.csv; summary: $OUT/summary.txt"
if [[ $PUBLISH == 1 ]]; then
    cp "$OUT/soak.png" docs/soak.png
    cp "$OUT/soak.csv" docs/soak.csv
    echo "  published to docs/soak.png and docs/soak.csv"
fi

if [[ $driver_status != 0 || $tollgate_status != 0 ]]; then
    echo "soak: FAIL"
    exit 1
fi
awk -v t="$term_took" 'BEGIN {exit !(t <= 16)}' || { echo "soak: FAIL (stop took $term_took s)"; exit 1; }
echo "soak: PASS"
