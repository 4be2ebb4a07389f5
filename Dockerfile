# The image: tollgate as one static binary in an empty (`scratch`) image, with the CA roots
# for an https issuer, running as uid/gid 65532: no shell, no shared libraries, no package
# manager.
#
# Build with a registry at hand (Docker, or podman):
#   docker build -t tollgate .
# The `build` stage compiles a statically linked binary (glibc, `+crt-static`) and lays out
# the image's files under /rootfs; the `rootfs` stage is exactly those files.
#
# Build offline, with no base image to pull: compile on the host and hand the files in as
# the `rootfs` stage (a build context named like a stage replaces it; `build` is skipped):
#   scripts/image.sh build
# which runs, after a static `cargo build` and laying out target/static/rootfs/
# (usr/local/bin/tollgate, etc/ssl/certs/ca-certificates.crt):
#   podman build --format docker --build-context rootfs=target/static/rootfs -t tollgate .
# (`docker buildx build --build-context rootfs=…` works the same way.) `--format docker`
# keeps the HEALTHCHECK, which podman's default OCI format drops.
#
# Inside the image: DNS is glibc's own (static glibc has `files` and `dns` built in, no NSS
# modules to load), so names resolve from the /etc/hosts and /etc/resolv.conf the container
# runtime provides. https to the issuer is verified against
# /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE names it; mount another bundle over it
# for a private CA).
#
# Run next to a gateway on the same host: the shipped configs listen on 127.0.0.1 and
# trust loopback, which holds as written in the host's network:
#   docker run --network host -v "$PWD/tollgate.toml:/etc/tollgate/tollgate.toml:ro" tollgate
# Next to a gateway container instead, put both on one user-defined network, set
# listen = "0.0.0.0:8080" and trust the gateway container's fixed address only
# (docker network create --subnet 172.30.0.0/24 api; the gateway with --ip 172.30.0.10;
# proxy.trusted = ["172.30.0.10/32"]). Do not publish /auth with -p: every client that
# reaches the host port could call it, and tollgate would see Docker's address instead of
# the gateway's.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Static: the binary needs nothing from the image it runs in. Symbols stripped (~20% of
# the binary); panics still name their file and line.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_STRIP=symbols

# The dependencies, in a layer of their own: rebuilt only when Cargo.toml, Cargo.lock or
# the benches (which the manifest names) change. Placeholder sources stand in for
# tollgate's own, whose build state is then removed so the real sources below are
# compiled whatever their timestamps. `--target` (the build machine's own) keeps RUSTFLAGS
# off build scripts and proc macros, which cannot be static.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && triple="$(rustc -vV | sed -n 's/^host: //p')" \
    && cargo build --release --locked --bin tollgate --target "$triple" \
    && rm -rf src target/"$triple"/release/.fingerprint/tollgate-* \
        target/"$triple"/release/deps/tollgate-* target/"$triple"/release/deps/libtollgate-*

COPY . .
RUN triple="$(rustc -vV | sed -n 's/^host: //p')" \
    && cargo build --release --locked --bin tollgate --target "$triple" \
    && mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs \
    && cp target/"$triple"/release/tollgate /rootfs/usr/local/bin/tollgate \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt

# What goes into the image, and nothing else. Replaced by `--build-context rootfs=DIR`.
FROM scratch AS rootfs
COPY --from=build /rootfs/ /

FROM scratch
COPY --from=rootfs / /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so a runtime can tell it is not root without an /etc/passwd.
USER 65532:65532
EXPOSE 8080
# No shell in the image: tollgate asks itself, at the address its config serves /healthz
# on (ops_listen when set, else listen).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/usr/local/bin/tollgate", "health", "--config", "/etc/tollgate/tollgate.toml"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.toml"]
