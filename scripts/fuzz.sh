#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 10), one after another,
# from its seed corpus, and prints one line per target: executions, coverage (`cov`,
# `ft`) and the verdict. Exits non-zero when a target crashed (its input is left in
# fuzz/artifacts/TARGET/) or did not build. New inputs go to a temporary directory, never
# into the committed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain (`cargo +nightly`) and cargo-fuzz; installs cargo-fuzz from
# the registry when it is missing. Without nightly it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly, then scripts/fuzz.sh)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    if ! timeout 900 cargo +nightly install cargo-fuzz --locked >&2; then
        echo "fuzz: FAILED: could not install cargo-fuzz"
        exit 1
    fi
fi

# Built once with the flags every run below repeats (no sanitizer: tollgate is safe Rust;
# libFuzzer's coverage, debug assertions and overflow checks stay on).
flags=(--sanitizer none)
if ! cargo +nightly fuzz build "${flags[@]}" >&2; then
    echo "fuzz: FAILED: the fuzz targets did not build"
    exit 1
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    log="$work/$target.log"
    start=$(date +%s)
    cargo +nightly fuzz run "${flags[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1
    status=$?
    elapsed=$(($(date +%s) - start))
    # libFuzzer's last status line: `#N  DONE  cov: C ft: F corp: ...`.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    if [ "$status" -eq 0 ]; then
        verdict=ok
    else
        verdict="CRASHED (see fuzz/artifacts/$target/)"
        failed=1
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 5 >&2
    fi
    echo "fuzz $target: ${execs:-0} execs in ${elapsed}s, cov ${cov:-?}, ft ${ft:-?}: $verdict"
done
exit "$failed"
