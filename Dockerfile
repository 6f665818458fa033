# The drill daemon's image, for a registry (charts/drill runs it). Multi-stage: build with
# the Rust toolchain, run on a slim Debian as a non-root user with only the binary and CA
# certificates. No registry is reachable on the project's CI machines: there,
# scripts/image.sh builds an equivalent image from a local binary, and
# crates/drill-cli/tests/demo.rs runs the daemon in it.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p drill-cli --bin drill

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 10001 drill \
 && useradd -u 10001 -g 10001 -d /var/lib/drill -s /usr/sbin/nologin drill \
 && mkdir -p /var/lib/drill /etc/drill && chown drill:drill /var/lib/drill
COPY --from=build /src/target/release/drill /usr/local/bin/drill
USER 10001:10001
WORKDIR /var/lib/drill
ENV HOME=/var/lib/drill
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/drill"]
CMD ["daemon", "--playbooks", "/etc/drill/playbooks", "--drills", "/etc/drill/drills", "--listen", "0.0.0.0:8090", "--tokens", "/etc/drill/secret/tokens"]
