#!/usr/bin/env bash
# A/B of the live start (issue 16): server binaries taken in turn, round after
# round, each against the same Redis and fake Plivo, so that the noise of this
# shared machine falls on every binary alike. A full load.sh run takes ten
# minutes and its rows can swing 15% from one run to the next; alternating
# short runs shows a 5% change.
#
#   ./bench/ab.sh /tmp/bin-main /tmp/bin-branch      # each a release build
#
# Each run starts the binary in live mode (as load.sh's live-mode server,
# with the same raised limits), drives POST /v1/verifications with wrk at 32
# connections (a new number each time, a new area code each run) and prints
# its rate and the CPU the server, Redis and the fake Plivo spent per
# request. Redis is flushed between runs.
#
# Environment: ROUNDS (4), DURATION (8 seconds per run), CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
me=ab.sh
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 SERVER_BIN…" >&2; exit 2; }
command -v wrk >/dev/null || apt_install wrk
command -v redis-server >/dev/null || apt_install redis-server
load_bin=$(cargo bench --bench load --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
case $load_bin in /*) ;; *) load_bin=$root/$load_bin ;; esac

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
redis_port=$(free_port)
start_redis "$redis_port" "$work/redis"
redis_pid=${pids[-1]}
fake_port=$(free_port)
"$load_bin" fake-plivo --addr "127.0.0.1:$fake_port" 2>"$work/fake.log" &
fake_pid=$!
pids+=("$fake_pid")
sleep 0.5
api_key=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
unlimited=1000000000/1m
cat bench/wrk/common.lua bench/wrk/start.lua >"$work/start.lua"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
areas=(212 310 415 646 718 917 202 305 312 617 702 713 404 503 206 303 512 614 615 801)
run=0
echo "live start, wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    port=$(free_port)
    env REDIS_URL="redis://127.0.0.1:$redis_port" API_KEYS="$api_key" RUST_LOG=warn \
      OTP_SECRET="$(head -c 32 /dev/urandom | base64)" MAX_ATTEMPTS=20 \
      RATE_LIMIT_NUMBER=$unlimited RATE_LIMIT_IP=$unlimited RATE_LIMIT_API_KEY=$unlimited \
      RATE_LIMIT_COUNTRY=$unlimited RATE_LIMIT_GLOBAL=$unlimited PUMPING_MIN_VOLUME=1000000 \
      ALLOWED_COUNTRIES='*' MAX_CONNECTIONS_PER_IP=$((CONNECTIONS > 128 ? CONNECTIONS : 128)) \
      LISTEN_ADDR="127.0.0.1:$port" REDIS_KEY_PREFIX="ab$run" PUBLIC_BASE_URL="http://127.0.0.1:$port" \
      PLIVO_AUTH_ID=MABENCHMARK0000000000 PLIVO_CHECK_CREDENTIALS=off PLIVO_AUTH_TOKEN="$token" \
      PLIVO_FROM_NUMBER=+14155550199 PLIVO_API_BASE_URL="http://127.0.0.1:$fake_port" \
      PLIVO_PHLO_BASE_URL=http://127.0.0.1:9 "$bin" >"$work/server.log" 2>&1 &
    server_pid=$!
    "$load_bin" wait-ready --addr "127.0.0.1:$port" --since-ns "$(date +%s%N)" >/dev/null ||
      { cat "$work/server.log" >&2; exit 1; }
    s0=$(ticks "$server_pid"); r0=$(ticks "$redis_pid"); f0=$(ticks "$fake_pid")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/start.lua" "http://127.0.0.1:$port" \
      -- 2 "$api_key" "${areas[$((run % ${#areas[@]}))]}" | grep '^RESULT')
    s1=$(ticks "$server_pid"); r1=$(ticks "$redis_pid"); f1=$(ticks "$fake_pid")
    n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
    printf 'round %s %-24s %s req/s, non-2xx %s; µs/req: server %s, Redis %s, fake Plivo %s\n' \
      "$round" "$(basename "$bin")" "$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$out")" \
      "$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$out")" \
      $(( (s1 - s0) * tick_us / n )) $(( (r1 - r0) * tick_us / n )) $(( (f1 - f0) * tick_us / n ))
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    redis-cli -p "$redis_port" FLUSHALL >/dev/null
    run=$((run + 1))
  done
done
