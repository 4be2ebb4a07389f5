# Build: docker build -t tollgate .
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

# The dependencies, in a layer of their own: rebuilt only when Cargo.toml or Cargo.lock
# change. Placeholder sources stand in for tollgate's own, whose build state is then
# removed so the real sources below are compiled whatever their timestamps.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/check.rs \
    && cargo build --release --locked --bin tollgate \
    && rm -rf src benches target/release/.fingerprint/tollgate-* target/release/deps/tollgate-* \
        target/release/deps/libtollgate-*

COPY . .
RUN cargo build --release --locked --bin tollgate

# distroless/cc: glibc and CA certificates (for the issuer's https), no shell, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
USER nonroot:nonroot
EXPOSE 8080
# No shell in the image: tollgate asks itself, at the address its config serves /healthz
# on (ops_listen when set, else listen).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/usr/local/bin/tollgate", "health", "--config", "/etc/tollgate/tollgate.toml"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.toml"]
