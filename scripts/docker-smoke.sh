#!/usr/bin/env bash
# Builds the Docker image and smoke-tests it with Redis. Opt-in: not part of
# ./scripts/test.sh (it needs a Docker engine, root for debootstrap the first
# time, and a release build).
#
#   ./scripts/docker-smoke.sh
#
# Where base images cannot be pulled, it makes them: the runtime base is this
# host's Debian release made with debootstrap and `docker import`ed
# (plivo-2fa-base:<codename>), and a Redis image is that base plus Debian's
# redis-server. The server binary is this host's release build (cargo build
# --release), put in the image with BINARY=prebuilt, so no Rust image is
# needed either; the runtime base has this host's glibc.
#
# Then, with the image: Redis with its append-only file on, the server on a
# private network (read-only root, no capabilities), /healthz, /readyz, a
# whole sandbox verification through the API (start, the code from
# /sandbox/messages, check), Docker's own HEALTHCHECK, the verification still
# there after Redis restarts, and a graceful stop (exit code 0).
#
# Settings (environment):
#   BASE_IMAGE    the runtime base to build on       plivo-2fa-base:<this host's codename>
#   DEBIAN_SUITE  the release debootstrap makes      this host's (/etc/os-release)
#   DEBIAN_MIRROR the mirror debootstrap reads       http://deb.debian.org/debian
#   REDIS_IMAGE   a Redis image to use instead       plivo-2fa-smoke-redis:<codename>
#   IMAGE         the tag of the image built         plivo-2fa:smoke
#   KEEP=1        leave the containers running at the end, to look at them
set -euo pipefail
cd "$(dirname "$0")/.."

me=docker-smoke.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

say() { echo "$me: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
suite=${DEBIAN_SUITE:-${codename:-bookworm}}
base=${BASE_IMAGE:-plivo-2fa-base:$suite}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=${IMAGE:-plivo-2fa:smoke}
redis_image=${REDIS_IMAGE:-plivo-2fa-smoke-redis:$suite}
run=p2fa-smoke-$$
api_key=smoke-test-key-0123456789
to=+14155550100

for tool in curl jq; do
  command -v "$tool" >/dev/null || apt_install "$tool"
done

# --- the engine ---------------------------------------------------------------
if ! command -v docker >/dev/null; then
  say "installing docker.io (Debian package)"
  apt_install docker.io
fi
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
    say "no Docker engine answers: starting dockerd for this run"
    dockerd >"$work/dockerd.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { cat "$work/dockerd.log" >&2; fail "dockerd did not start"; }
  else
    fail "no Docker engine answers (start dockerd, or run as root to let this script start it)"
  fi
fi
# The Dockerfile needs BuildKit: a client with the buildx plugin, or Debian's
# docker.io client (20.10), which has BuildKit built in. A newer client
# without buildx refuses DOCKER_BUILDKIT=1, so the one that can build is used.
export DOCKER_BUILDKIT=1
build_client=docker
if ! docker buildx version >/dev/null 2>&1; then
  for client in /usr/bin/docker "$(command -v docker)"; do
    if [ -x "$client" ] && "$client" version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
      build_client=$client
      break
    fi
  done
fi

# --- the base images ----------------------------------------------------------
if ! docker image inspect "$base" >/dev/null 2>&1; then
  say "making $base with debootstrap ($suite from $mirror)"
  command -v debootstrap >/dev/null || apt_install debootstrap
  as_root debootstrap --variant=minbase --include=ca-certificates "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  as_root rm -rf "$work/rootfs/var/cache/apt/archives"/*.deb "$work/rootfs/var/lib/apt/lists"/*
  as_root tar -C "$work/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$base" >/dev/null
  as_root rm -rf "$work/rootfs"
fi
if ! docker image inspect "$redis_image" >/dev/null 2>&1; then
  say "making $redis_image: $base with Debian's redis-server"
  "$build_client" build -q -t "$redis_image" --build-arg BASE="$base" - >/dev/null <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]
EOF
fi

# --- the image ----------------------------------------------------------------
say "release build (a no-op when it is up to date)"
cargo build --release --locked --bin plivo-2fa
say "building $image on $base"
"$build_client" build -t "$image" \
  --build-arg RUNTIME_IMAGE="$base" \
  --build-arg BINARY=prebuilt \
  . >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "docker build"; }
grep -q 'templates OK' "$work/build.log" || say "note: the build log does not show check-templates' line (cached step)"
[ "$(docker image inspect -f '{{.Config.User}}' "$image")" = "10001:10001" ] || fail "the image does not run as uid 10001"

# --- run it with Redis --------------------------------------------------------
cleanup_containers() {
  if [ "${KEEP:-}" = 1 ]; then
    say "KEEP=1: left running: containers $run-server, $run-redis; network $run"
    return
  fi
  docker rm -f "$run-server" "$run-redis" >/dev/null 2>&1 || true
  docker network rm "$run" >/dev/null 2>&1 || true
}
trap 'cleanup_containers; cleanup' EXIT

docker network create "$run" >/dev/null
docker run -d --name "$run-redis" --network "$run" --network-alias redis \
  "$redis_image" redis-server --protected-mode no --dir /data \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction >/dev/null
for _ in $(seq 1 100); do
  docker exec "$run-redis" redis-cli ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
[ "$(docker exec "$run-redis" redis-cli config get appendonly | tail -n 1)" = yes ] || fail "Redis has no AOF"

docker run -d --name "$run-server" --network "$run" \
  -p 127.0.0.1::8080 \
  -e REDIS_URL=redis://redis:6379 -e API_KEYS="$api_key" \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --stop-timeout 30 "$image" >/dev/null
port=$(docker port "$run-server" 8080/tcp | head -n 1 | sed 's/.*://')
url="http://127.0.0.1:$port"
say "server at $url"

wait_for() { # what url status
  for _ in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$2")" = "$3" ] && return 0
    sleep 0.2
  done
  docker logs "$run-server" >&2 || true
  fail "$1: $2 never answered $3"
}
wait_for "health" "$url/healthz" 200
wait_for "readiness" "$url/readyz" 200
docker logs "$run-server" 2>&1 | grep '"plivo-2fa ready"' | grep -q '"store":"redis"' \
  || { docker logs "$run-server" >&2; fail "the server is not on Redis"; }

api() { # method path [json]
  curl -s -X "$1" "$url$2" -H "Authorization: Bearer $api_key" \
    ${3:+-H 'Content-Type: application/json' -d "$3"}
}
started=$(api POST /v1/verifications "{\"to\": \"$to\", \"channel\": \"sms\"}")
id=$(jq -r .id <<<"$started")
[ "$(jq -r .status <<<"$started")" = pending ] || fail "start: $started"
code=$(curl -s "$url/sandbox/messages" \
  | jq -r --arg to "$to" 'map(select(.to == $to)) | last | .text | capture("\\b(?<c>[0-9]{6})\\b").c')
checked=$(api POST /v1/verifications/check "{\"to\": \"$to\", \"code\": \"$code\"}")
[ "$(jq -r '.status + " " + (.valid | tostring)' <<<"$checked")" = "approved true" ] || fail "check: $checked"
say "a sandbox verification went through: $id approved"

for _ in $(seq 1 60); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$run-server")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || fail "Docker's HEALTHCHECK says $health"
say "Docker's HEALTHCHECK: healthy"

# Redis restarts: the append-only file brings the verification back.
docker restart "$run-redis" >/dev/null
wait_for "readiness after Redis restarted" "$url/readyz" 200
after=$(api GET "/v1/verifications/$id")
[ "$(jq -r .status <<<"$after")" = approved ] || fail "after Redis restarted: $after"
say "after a Redis restart the verification is still approved"

docker stop "$run-server" >/dev/null
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$run-server")
[ "$exit_code" = 0 ] || { docker logs "$run-server" >&2; fail "stopped with exit code $exit_code"; }
docker logs "$run-server" 2>&1 | grep -q 'shutting down' || fail "no graceful shutdown in the log"
say "docker stop: graceful, exit code 0"
say "OK: $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')) on $base"
