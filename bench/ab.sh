#!/usr/bin/env bash
# A/B of one scenario (issue 16): server binaries taken in turn, round after
# round, each against the same Redis and fake Plivo, so that the noise of this
# shared machine falls on every binary alike. A full load.sh run takes ten
# minutes and its rows can swing 15% from one run to the next; alternating
# short runs shows a 5% change.
#
#   ./bench/ab.sh /tmp/bin-main /tmp/bin-branch      # each a release build
#   SCENARIO=check_right ./bench/ab.sh /tmp/bin-main /tmp/bin-branch
#   SCENARIO=check_none ./bench/ab.sh /tmp/bin memory:/tmp/bin
#
# Each run starts the binary in live mode (as load.sh's live-mode server,
# with the same raised limits), drives one scenario with wrk at 32
# connections and prints its rate, the CPU the server, Redis and the fake
# Plivo spent per request, Redis's reads of its sockets per request (one per
# request: nothing batched; fewer: several commands per read), the commands
# Redis ran per request, and the server's peak RSS. Redis is flushed between
# runs. A binary given as memory:BIN runs on its embedded in-memory store
# instead (no REDIS_URL), to show what a request costs the server without
# the Redis round trip. The scenarios are load.sh's:
#
#   start        POST /v1/verifications (live), a new number each time, a new
#                area code each run
#   check_right  check by id with the right code, a fresh verification each
#                time (preloaded before each run, through the crate's store)
#   check_none   check by number for numbers with no verification (404)
#   answer       the signed voice answer URL (V3 signature, a fresh nonce
#                each), over 1000 calls preloaded before each run
#   healthz      GET /healthz: the server's ceiling
#
# Environment: SCENARIO (start), ROUNDS (4), DURATION (8 seconds per run),
# CONNECTIONS (32), ALLOWED_COUNTRIES (*, as load.sh: every region; a list
# makes each start ask its number's region), PERF_DIR (when set, each run's server is sampled with
# `perf record -g` into PERF_DIR/<round>-<binary>.data, and Redis into
# <round>-<binary>.redis.data; its rates are then
# not ones to compare), COUNT_INSTRUCTIONS (when 1, the server and Redis run
# under valgrind's callgrind, and each run prints the instructions each of
# them executed per request, counted from just before wrk starts to just
# after it ends: the same for the same binary and inputs whatever else the
# machine does, where this VM's rates and CPU times swing by a third between
# two rounds; its rates are some fifty times lower and not ones to compare),
# CALLGRIND_DIR (with COUNT_INSTRUCTIONS, where each run's counts are kept as
# <round>-<binary>.server.cg and .redis.cg, for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SCENARIO=${SCENARIO:-start}
ALLOWED_COUNTRIES=${ALLOWED_COUNTRIES:-*}
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
if [ -n "${PERF_DIR:-}" ]; then command -v perf >/dev/null || apt_install linux-perf; fi
counting=${COUNT_INSTRUCTIONS:-}
[ "$counting" = 1 ] || counting=
if [ -n "$counting" ]; then command -v valgrind >/dev/null || apt_install valgrind; fi
load_bin=$(load_helper)

redis_port=$(free_port)
# callgrind's command for a process whose counts go to $work/NAME.cg.N, one
# file per dump (dumped on demand, not at exit).
callgrind() { # NAME
  echo valgrind --tool=callgrind --callgrind-out-file="$work/$1.cg" --dump-instr=no \
    --log-file="$work/$1.vg"
}
[ -z "$counting" ] || read -ra redis_wrapper <<<"$(callgrind redis)"
start_redis "$redis_port" "$work/redis" --enable-debug-command local
redis_pid=${pids[-1]}
fake_port=$(free_port)
"$load_bin" fake-plivo --addr "127.0.0.1:$fake_port" 2>"$work/fake.log" &
fake_pid=$!
pids+=("$fake_pid")
sleep 0.5
api_key=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
unlimited=1000000000/1m
otp_secret=$(head -c 32 /dev/urandom | base64)
case $SCENARIO in
  start) script=start.lua ;;
  check_right) script=check.lua ;;
  check_none) script=check_none.lua ;;
  answer) script=answer.lua ;;
  healthz) script=static.lua ;;
  *) echo "$me: unknown SCENARIO $SCENARIO (start, check_right, check_none, answer, healthz)" >&2; exit 2 ;;
esac
cat bench/wrk/common.lua "bench/wrk/$script" >"$work/scenario.lua"
case $SCENARIO in check_right | answer)
  for arg in "$@"; do
    [[ $arg != memory:* ]] || { echo "$me: $SCENARIO preloads Redis; memory:BIN runs only start, check_none and healthz" >&2; exit 2; }
  done ;;
esac
# A right-code check approves a verification once, and an answer URL takes a
# nonce once: each run gets its own, enough for a rate well past any check's
# (50,000 a second; a quiet machine's reached 30,000).
check_count=$(( DURATION * 50000 ))
# Under callgrind a server answers some fifty times fewer.
[ -z "$counting" ] || check_count=$(( DURATION * 2500 ))
# callgrind_zero PID / callgrind_count PID NAME COPY: zero a process's
# counters; dump them, keep the dump as $CALLGRIND_DIR/COPY when that is set,
# and print the instructions the process executed since the zero.
callgrind_zero() { callgrind_control -z "$1" >/dev/null 2>&1; }
callgrind_count() {
  local dump ir
  callgrind_control -d "$1" >/dev/null 2>&1
  dump=$(ls -t "$work/$2".cg.* | head -1)
  ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
  [ -n "$ir" ] || { echo "$me: no instruction count in $dump" >&2; exit 1; }
  [ -z "${CALLGRIND_DIR:-}" ] || { mkdir -p "$CALLGRIND_DIR"; cp "$dump" "$CALLGRIND_DIR/$3"; }
  echo "$ir"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
areas=(212 310 415 646 718 917 202 305 312 617 702 713 404 503 206 303 512 614 615 801)
run=0
echo "$SCENARIO, wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for arg in "$@"; do
    # memory:BIN runs BIN on its embedded in-memory store: what a request
    # costs the server with no Redis round trip at all.
    bin=${arg#memory:} name=$(basename "$bin") store=(REDIS_URL="redis://127.0.0.1:$redis_port")
    [ "$bin" = "$arg" ] || { name=memory:$name store=(); }
    port=$(free_port)
    wrap=() slow=()
    # Under callgrind, Redis's answers take milliseconds: the store's timeout
    # is raised (its default is 1 s) so the server does not give up on it.
    [ -z "$counting" ] || {
      read -ra wrap <<<"$(callgrind "server-$run")"
      slow=(REDIS_TIMEOUT_MS=20000)
    }
    env "${slow[@]}" "${store[@]}" API_KEYS="$api_key" RUST_LOG=warn \
      OTP_SECRET="$otp_secret" MAX_ATTEMPTS=20 \
      RATE_LIMIT_NUMBER=$unlimited RATE_LIMIT_IP=$unlimited RATE_LIMIT_API_KEY=$unlimited \
      RATE_LIMIT_COUNTRY=$unlimited RATE_LIMIT_GLOBAL=$unlimited PUMPING_MIN_VOLUME=1000000 \
      ALLOWED_COUNTRIES="$ALLOWED_COUNTRIES" MAX_CONNECTIONS_PER_IP=$((CONNECTIONS > 128 ? CONNECTIONS : 128)) \
      LISTEN_ADDR="127.0.0.1:$port" REDIS_KEY_PREFIX="ab$run" PUBLIC_BASE_URL="http://127.0.0.1:$port" \
      PLIVO_AUTH_ID=MABENCHMARK0000000000 PLIVO_CHECK_CREDENTIALS=off PLIVO_AUTH_TOKEN="$token" \
      PLIVO_FROM_NUMBER=+14155550199 PLIVO_API_BASE_URL="http://127.0.0.1:$fake_port" \
      PLIVO_PHLO_BASE_URL=http://127.0.0.1:9 "${wrap[@]}" "$bin" >"$work/server.log" 2>&1 &
    server_pid=$!
    "$load_bin" wait-ready --addr "127.0.0.1:$port" --since-ns "$(date +%s%N)" >/dev/null ||
      { cat "$work/server.log" >&2; exit 1; }
    case $SCENARIO in
      start) args=("$api_key" "${areas[$((run % ${#areas[@]}))]}") ;;
      check_right)
        "$load_bin" preload --redis "redis://127.0.0.1:$redis_port" --otp-secret "$otp_secret" \
          --count "$check_count" --first-number 2000000 --area-code 415 --out "$work/right.txt" \
          --prefix "ab$run" >/dev/null
        args=("$work/right.txt" "$api_key" 123456 id) ;;
      check_none) args=("$api_key") ;;
      answer)
        "$load_bin" preload --redis "redis://127.0.0.1:$redis_port" --otp-secret "$otp_secret" \
          --count 1000 --first-number 4000000 --area-code 415 --voice --out "$work/calls.txt" \
          --prefix "ab$run" >/dev/null
        "$load_bin" sign --base "http://127.0.0.1:$port" --token "$token" --calls "$work/calls.txt" \
          --count "$check_count" --out "$work/answers.txt" --body-out "$work/answer-body.txt"
        args=("$work/answers.txt" "$work/answer-body.txt") ;;
      healthz) args=() ;;
    esac
    wait_for_rehash "$redis_port"
    path=; [ "$SCENARIO" = healthz ] && path=/healthz
    redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
    perf_pid=
    if [ -n "${PERF_DIR:-}" ]; then
      mkdir -p "$PERF_DIR"
      perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$server_pid" \
        -o "$PERF_DIR/$round-$name.data" -- sleep "$DURATION" 2>/dev/null &
      perf_pid=$!
      # Redis too: where a script's time goes (Debian's redis-server has
      # only its exported symbols; one built from source has them all).
      perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$redis_pid" \
        -o "$PERF_DIR/$round-$name.redis.data" -- sleep "$DURATION" 2>/dev/null &
      perf_redis_pid=$!
    fi
    if [ -n "$counting" ]; then callgrind_zero "$server_pid"; callgrind_zero "$redis_pid"; fi
    s0=$(ticks "$server_pid"); r0=$(ticks "$redis_pid"); f0=$(ticks "$fake_pid")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/scenario.lua" \
      "http://127.0.0.1:$port$path" -- 2 "${args[@]}" | grep '^RESULT')
    s1=$(ticks "$server_pid"); r1=$(ticks "$redis_pid"); f1=$(ticks "$fake_pid")
    if [ -n "$counting" ]; then
      server_ir=$(callgrind_count "$server_pid" "server-$run" "$round-$name.server.cg")
      redis_ir=$(callgrind_count "$redis_pid" redis "$round-$name.redis.cg")
    fi
    if [ -n "$perf_pid" ]; then
      wait "$perf_pid" || echo "$me: perf record failed" >&2
      wait "$perf_redis_pid" || echo "$me: perf record of Redis failed" >&2
    fi
    calls=$(redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' |
      awk -F'[:,=]' -v n="$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")" '
        /^cmdstat_/ && $3 / n >= 0.05 {
          sub(/^cmdstat_/, "", $1)
          printf "%s%s %.2f (%.1f µs)", sep, $1, $3 / n, $7; sep = ", "
        }')
    reads=$(redis-cli -p "$redis_port" INFO stats | tr -d '\r' |
      sed -n 's/^total_reads_processed:\([0-9]*\)$/\1/p')
    n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
    printf 'round %s %-24s %s req/s, p99 %s ms, non-2xx %s; µs/req: server %s, Redis %s, fake Plivo %s; Redis reads/req %s\n' \
      "$round" "$name" "$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$out")" \
      "$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")" \
      "$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$out")" \
      $(( (s1 - s0) * tick_us / n )) $(( (r1 - r0) * tick_us / n )) $(( (f1 - f0) * tick_us / n )) \
      "$(awk -v r="$reads" -v n="$n" 'BEGIN { printf "%.2f", r / n }')"
    if [ -n "$counting" ]; then
      echo "        instructions per request: server $(( server_ir / n )), Redis $(( redis_ir / n ))"
    fi
    echo "        Redis commands per request: $calls; server peak RSS $(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status") MiB"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    redis-cli -p "$redis_port" FLUSHALL >/dev/null
    run=$((run + 1))
  done
done
