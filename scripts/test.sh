#!/usr/bin/env bash
# The test command. On a fresh machine it installs what the tests need
# (redis-server, curl and jq, and chromium with chromium-driver for the browser tests, from
# Debian's packages; cargo-nextest if missing), starts a throwaway Redis on a
# loopback port for the run, runs every test, and stops Redis again, whatever
# happens.
set -euo pipefail
cd "$(dirname "$0")/.."

me=test.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "test.sh: installing redis-server (Debian package)" >&2
  apt_install redis-server
fi
# tests/api/api.rs runs README's curl walk-through, which uses curl and jq.
if ! command -v curl >/dev/null || ! command -v jq >/dev/null; then
  echo "test.sh: installing curl and jq (Debian packages)" >&2
  apt_install curl jq
fi
# tests/api/browser.rs drives Debian's Chromium through chromedriver at these paths.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "test.sh: installing chromium and chromium-driver (Debian packages)" >&2
  apt_install chromium chromium-driver
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

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
