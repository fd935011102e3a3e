# syntax=docker/dockerfile:1.7
#
# Image for the `peakload` CLI (load generator, gate, report, diagnose, merge).
# Used as-is by the Kubernetes Indexed Job that `peakload k8s` renders.
#
#   docker build -t peakload:dev .
#   docker run --rm -v "$PWD/reports:/work/reports" peakload:dev \
#       run scenarios/black-friday.toml --target https://my-alb.example.com

# At least the highest `rust-version` among the locked dependencies (the AWS SDK crates ask
# for 1.94.1); tests/deploy checks it against `cargo metadata`.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config cmake perl make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p peakload --bin peakload \
 && install -D -m 0755 target/release/peakload /out/peakload

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 peakload \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
            --home-dir /work --shell /usr/sbin/nologin peakload \
 && install -d -o 10001 -g 10001 -m 0750 /work /work/reports

COPY --from=builder /out/peakload /usr/local/bin/peakload
# Ready scenarios and their data files, so `run scenarios/black-friday.toml` works.
COPY --from=builder --chown=10001:10001 /src/scenarios /work/scenarios

WORKDIR /work
USER 10001:10001
# A CLI run, not a server: nothing to probe.
HEALTHCHECK NONE
ENTRYPOINT ["peakload"]
CMD ["--help"]
