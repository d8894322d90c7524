#
# plivo-2fa: build with Cargo, then run as a non-root user on Debian slim.
#
#   docker build -t plivo-2fa .
#   docker run --rm -p 8080:8080 plivo-2fa        # sandbox mode: no Plivo account needed
#
# Production settings come from the environment (docker run --env-file, or your
# orchestrator's secrets): see docs/DEPLOYMENT.md. Give the container more than
# the server's 15 s to drain on stop (docker run --stop-timeout 30; Compose
# stop_grace_period: 30s): Docker's default is 10 s.
#
# Build arguments (the images are arguments, so a mirror or a base made
# locally works as well as Docker Hub's):
#   BUILDER_IMAGE  a Rust toolchain on Debian, at least the rust-version in
#                  Cargo.toml                            rust:1.95-slim-trixie
#   RUNTIME_IMAGE  the Debian base the server runs on    debian:trixie-slim
#   BINARY         build: compile in BUILDER_IMAGE (the default);
#                  prebuilt: take target/release/plivo-2fa from the build
#                  context instead, built on a host whose glibc is no newer
#                  than RUNTIME_IMAGE's (scripts/docker-smoke.sh does this)
#
# Needs BuildKit (the default builder since Docker 23; DOCKER_BUILDKIT=1
# before): for the cache mounts, and so that the stage BINARY does not name is
# never built (nor its image pulled). There is no `# syntax=` line on purpose:
# it would make every build pull the Dockerfile frontend from Docker Hub, and
# the frontend built into the engine reads this file.
#
# Built and run by scripts/docker-smoke.sh (opt-in: docs/DEPLOYMENT.md, "Run
# it in a container").

ARG BUILDER_IMAGE=rust:1.95-slim-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim
ARG BINARY=build

# ---------------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS build
WORKDIR /build

# What the release build reads: the manifest and lock file, the build's
# settings (.cargo/config.toml: the AEAD's portable backends), the sources
# (the Lua scripts are under src/), and the demo page and PHLO definition,
# which are compiled into the binary.
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY web ./web
COPY phlo ./phlo

# The registry and target directories are cache mounts, so a rebuild after a
# code change recompiles only this crate; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin plivo-2fa \
 && install -D -m 0755 target/release/plivo-2fa /out/plivo-2fa

# ---------------------------------------------------------------------------
FROM scratch AS prebuilt
COPY target/release/plivo-2fa /out/plivo-2fa

# ---------------------------------------------------------------------------
FROM ${BINARY} AS binary

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

# TLS roots for Plivo and webhook receivers (rustls reads the built-in webpki
# roots too; this is for anything else in the image). A base that already has
# them, such as one made with debootstrap --include=ca-certificates, skips apt.
RUN if ! dpkg-query -W -f '${Status}' ca-certificates 2>/dev/null | grep -q 'ok installed'; then \
      apt-get update \
      && apt-get install -y --no-install-recommends ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

RUN groupadd --system --gid 10001 plivo-2fa \
 && useradd --system --uid 10001 --gid plivo-2fa \
      --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin plivo-2fa

COPY --from=binary /out/plivo-2fa /usr/local/bin/plivo-2fa
# The voice templates and the demo page are built into the binary; mount a
# directory and set XML_TEMPLATES_DIR to replace the templates.

ENV LISTEN_ADDR=0.0.0.0:8080 \
    RUST_LOG=info

# The templates the image will use, checked at build time.
RUN ["/usr/local/bin/plivo-2fa", "check-templates"]

WORKDIR /usr/local/share/plivo-2fa
USER 10001:10001
EXPOSE 8080

# SIGTERM is the graceful stop (SIGINT would be a forced one).
STOPSIGNAL SIGTERM

# The image has no curl or wget: bash's /dev/tcp asks GET /healthz on the port
# of the default LISTEN_ADDR. Change 8080 here if you change LISTEN_ADDR.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/plivo-2fa"]
CMD ["serve"]
