# Build: docker build -t tollgate .
# Run:   docker run -p 8080:8080 -v $PWD/tollgate.toml:/etc/tollgate/tollgate.toml tollgate
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tollgate

# distroless/cc: glibc and CA certificates (for the issuer's https), no shell, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.toml"]
