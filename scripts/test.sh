#!/usr/bin/env bash
# The test command. On a fresh machine it installs what the tests need
# (redis-server, and chromium with chromium-driver for the browser tests, from
# Debian's packages; cargo-nextest if missing), starts a throwaway Redis on a
# loopback port for the run, runs every test, and stops Redis again, whatever
# happens.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() { # package…
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "test.sh: installing redis-server (Debian package)" >&2
  apt_install redis-server
fi
# tests/browser.rs drives Debian's Chromium through chromedriver at these paths.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "test.sh: installing chromium and chromium-driver (Debian packages)" >&2
  apt_install chromium chromium-driver
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A free port whose cluster bus port (port + 10000) is free too; Redis Cluster
# needs both, so the port must be at most 55535.
free_cluster_port() {
  python3 - <<'PY'
import random, socket
while True:
    port = random.randint(20000, 50000)
    try:
        for p in (port, port + 10000):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            s.close()
    except OSError:
        continue
    print(port)
    break
PY
}

start_redis() { # port dir [extra args…]
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no "$@" &
  pids+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "test.sh: redis-server on port $port did not start" >&2
  cat "$dir/redis.log" >&2
  return 1
}

port=$(free_port)
start_redis "$port" "$work/single"
export TEST_REDIS_URL="redis://127.0.0.1:$port"
echo "test.sh: Redis at $TEST_REDIS_URL" >&2

# A local 3-master Redis Cluster for the cluster tests.
seeds=()
for i in 1 2 3; do
  p=$(free_cluster_port)
  start_redis "$p" "$work/cluster-$i" --cluster-enabled yes \
    --cluster-config-file "$work/cluster-$i/nodes.conf" --cluster-node-timeout 2000
  seeds+=("127.0.0.1:$p")
done
redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$work/cluster-create.log" 2>&1 || {
  cat "$work/cluster-create.log" >&2
  exit 1
}
for _ in $(seq 1 100); do
  redis-cli -p "${seeds[0]##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
  sleep 0.1
done
export TEST_REDIS_CLUSTER_URL="redis+cluster://$(IFS=,; echo "${seeds[*]}")"
echo "test.sh: Redis Cluster at $TEST_REDIS_CLUSTER_URL" >&2

cargo nextest run --no-fail-fast "$@"
