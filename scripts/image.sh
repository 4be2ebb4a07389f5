#!/usr/bin/env bash
# The container image, built from the repository's Dockerfile with podman and no registry:
# the static binary is compiled on this machine and handed to the Dockerfile as its
# `rootfs` stage, so no base image is pulled. tests/image.rs builds and runs the image
# through this script, which holds the podman flags in one place.
#
#   scripts/image.sh [build] [TAG]   build the image (default tag: tollgate), print its size
#   scripts/image.sh run ARGS...     podman run in the host's network, e.g.
#       scripts/image.sh run --rm -v "$PWD/tollgate.toml:/etc/tollgate/tollgate.toml:ro" tollgate
#   scripts/image.sh podman ARGS...  any podman command with this script's storage and flags
#                                    (podman images, podman logs ID, podman save …)
#   scripts/image.sh setup [CMD...]  make sure podman and runc (and CMD...) are installed:
#                                    as root with apt-get; exit 3 when they are missing and
#                                    cannot be installed
#   scripts/image.sh clean           remove the image storage
#
# IMAGE_STORAGE (default target/podman) holds podman's images and containers, its run
# state and its containers.conf, apart from the machine's own podman storage.
# With a registry at hand, `docker build -t tollgate .` builds the same image with the
# Dockerfile's own build stage instead.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
storage=${IMAGE_STORAGE:-$target_dir/podman}
case $storage in /*) ;; *) storage=$repo/$storage ;; esac
# Its own target dir: the static flags would otherwise rebuild target/release.
static_dir=$target_dir/static
ca_bundle=/etc/ssl/certs/ca-certificates.crt

# What worked with Debian's podman 4.3 where there is no systemd, no overlay support and
# no crun: vfs storage, runc, cgroupfs, and no default ulimits above the machine's own.
podman_() {
    CONTAINERS_CONF=$storage/containers.conf podman \
        --root "$storage/root" --runroot "$storage/run" \
        --storage-driver=vfs --runtime runc --cgroup-manager=cgroupfs "$@"
}

prepare_storage() {
    mkdir -p "$storage"
    if [ ! -f "$storage/containers.conf" ]; then
        printf '[containers]\ndefault_ulimits = []\n' >"$storage/containers.conf"
    fi
}

# setup [CMD...]: podman, runc and CMD..., installed with apt-get if need be (as root).
setup() {
    local missing=() command
    for command in podman runc "$@"; do
        command -v "$command" >/dev/null 2>&1 || missing+=("$command")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "image.sh: missing ${missing[*]} and cannot install them here (needs root and apt-get):" \
            "apt-get install -y ${missing[*]}" >&2
        exit 3
    fi
    echo "image.sh: installing ${missing[*]}" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# The files of the image: the static binary and the CA roots, laid out as in the image.
build_rootfs() {
    local triple
    triple=$(rustc -vV | sed -n 's/^host: //p')
    # The Dockerfile's build stage sets the same: static glibc, symbols stripped. --target
    # keeps the flags off build scripts and proc macros.
    echo "image.sh: cargo build --release (static, $triple) into $static_dir" >&2
    env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS="-C target-feature=+crt-static" \
        CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_TARGET_DIR="$static_dir" \
        "${CARGO:-cargo}" build --release --locked --bin tollgate --target "$triple" >&2
    if [ ! -f "$ca_bundle" ]; then
        echo "image.sh: no CA bundle at $ca_bundle (apt-get install ca-certificates)" >&2
        exit 1
    fi
    rm -rf "$static_dir/rootfs"
    mkdir -p "$static_dir/rootfs/usr/local/bin" "$static_dir/rootfs/etc/ssl/certs"
    cp "$static_dir/$triple/release/tollgate" "$static_dir/rootfs/usr/local/bin/tollgate"
    cp "$ca_bundle" "$static_dir/rootfs/etc/ssl/certs/ca-certificates.crt"
}

build() {
    local tag=${1:-tollgate}
    setup
    build_rootfs
    prepare_storage
    # --format docker: the OCI format has no HEALTHCHECK.
    podman_ build --format docker --build-context rootfs="$static_dir/rootfs" -t "$tag" -f Dockerfile . >&2
    local size
    size=$(podman_ image inspect --format '{{.Size}}' "$tag")
    echo "image $tag: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1000000 }'))"
}

case ${1:-build} in
    build)
        [ "$#" -gt 0 ] && shift
        build "$@"
        ;;
    run)
        shift
        prepare_storage
        # The host's network: tollgate beside a gateway on loopback, as the shipped configs
        # expect. --ulimit host: the machine's limits, which podman's defaults may exceed.
        podman_ run --network=host --ulimit host "$@"
        ;;
    podman)
        shift
        prepare_storage
        podman_ "$@"
        ;;
    setup)
        shift
        setup "$@"
        ;;
    clean)
        if [ -d "$storage/root" ]; then
            prepare_storage
            podman_ rm --all --force >/dev/null || true
            podman_ rmi --all --force >/dev/null || true
        fi
        rm -rf "$storage"
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        ;;
    *)
        echo "image.sh: unknown command $1 (build, run, podman, setup, clean; see --help)" >&2
        exit 2
        ;;
esac
