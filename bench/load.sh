#!/usr/bin/env bash
# The load harness (issue 8): one command that measures plivo-2fa against what
# this machine and Redis allow, and prints the table BENCHMARKS.md publishes.
#
# It installs what it needs when missing (wrk, redis-server and redis-tools from
# Debian's packages), builds the server in release mode, starts a throwaway
# Redis and the server on free loopback ports, and drives each scenario with
# wrk at $CONNECTIONS connections for $DURATION seconds:
#
#   healthz       GET /healthz: the server's ceiling (no store, no parsing)
#   check right   check by id with the right code, a fresh verification each time
#   check wrong   check by id with a wrong code, spread over many verifications
#   check none    check by number for numbers with no verification (404)
#   start         POST /v1/verifications (sandbox), a new number each time
#   answer        the signed voice answer URL (V3 signature, fresh nonce each)
#
# and, as the store's ceiling, redis-benchmark running EVALSHA of the real check
# script (prelude.lua + check.lua) at the same concurrency.
#
# The sandbox's Plivo auth token is random per process, so the answer scenario
# runs against a second server in live mode with a known token (its Plivo API
# URL points nowhere: answering a call never calls Plivo) and its own /healthz
# as ceiling. Verifications to check and calls to answer are preloaded into
# Redis by `benches/load.rs` through the crate's own store and keyring, with a
# code it knows: a right-code check can approve a verification only once, so
# that scenario needs one verification per request.
#
# Environment: DURATION (10), CONNECTIONS (32), THREADS (2, wrk's),
# PRELOAD_FACTOR (1.1: verifications preloaded per /healthz request the
# scenario could make; a check scenario that runs dry shows non-2xx answers).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PRELOAD_FACTOR=${PRELOAD_FACTOR:-1.1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

me=load.sh
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
say() { echo "load.sh: $*" >&2; }

command -v wrk >/dev/null || { say "installing wrk"; apt_install wrk; }
command -v redis-server >/dev/null || { say "installing redis-server"; apt_install redis-server; }
command -v redis-benchmark >/dev/null || { say "installing redis-tools"; apt_install redis-tools; }
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }

say "building the server and the helper (release)"
cargo build --release --quiet --bin plivo-2fa
server_bin=$CARGO_TARGET_DIR/release/plivo-2fa
load_bin=$(cargo bench --bench load --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
case $load_bin in /*) ;; *) load_bin=$root/$load_bin ;; esac
[ -x "$load_bin" ] || { say "cannot find the load helper binary"; exit 1; }

# --- Redis -------------------------------------------------------------------
redis_port=$(free_port)
start_redis "$redis_port" "$work/redis"
redis_pid=${pids[-1]}
redis_url="redis://127.0.0.1:$redis_port"

otp_secret=$(head -c 32 /dev/urandom | base64)
api_key=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
auth_token=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
unlimited=1000000000/1m

# Settings both servers share: their own Redis, known keys, and abuse limits
# raised so the load measures the work, not the refusals.
common_env=(
  REDIS_URL="$redis_url" API_KEYS="$api_key" OTP_SECRET="$otp_secret" RUST_LOG=warn
  MAX_ATTEMPTS=20 RATE_LIMIT_NUMBER=$unlimited RATE_LIMIT_IP=$unlimited
  RATE_LIMIT_API_KEY=$unlimited RATE_LIMIT_COUNTRY=$unlimited RATE_LIMIT_GLOBAL=$unlimited
  PUMPING_MIN_VOLUME=1000000 ALLOWED_COUNTRIES='*'
  # wrk is one client address: let it hold every connection it opens.
  MAX_CONNECTIONS_PER_IP=$((CONNECTIONS > 128 ? CONNECTIONS : 128))
)

# start_server NAME PORT [VAR=value…]: launches, waits for /readyz, and sets
# ${NAME}_pid and ${NAME}_ready_ms.
start_server() {
  local name=$1 port=$2; shift 2
  local t0
  t0=$(date +%s%N)
  env "${common_env[@]}" LISTEN_ADDR="127.0.0.1:$port" "$@" "$server_bin" \
    >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local ready
  if ! ready=$("$load_bin" wait-ready --addr "127.0.0.1:$port" --since-ns "$t0"); then
    say "the $name server did not become ready:"; cat "$work/$name.log" >&2; exit 1
  fi
  printf -v "${name}_pid" %s "$pid"
  printf -v "${name}_ready_ms" %s "$ready"
}

stop_server() { # pid
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

peak_rss_mib() { # pid
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# CPU time (user + system) a process has used, in clock ticks.
cpu_ticks() { # pid
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))

# wrk_run NAME SERVER_PID URL SCRIPT [args…]: runs one scenario; records its
# RESULT line and the CPU the server and Redis spent per request.
declare -A rps p50 p99 non2xx requests server_us redis_us
wrk_run() {
  local name=$1 server_pid=$2 url=$3 script=$4; shift 4
  cat "$root/bench/wrk/common.lua" "$root/bench/wrk/$script" >"$work/$name.lua"
  say "$name: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
  local out server0 redis0 server1 redis1
  server0=$(cpu_ticks "$server_pid"); redis0=$(cpu_ticks "$redis_pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/$name.lua" "$url" \
    -- "$THREADS" "$@" | tee "$work/$name.wrk" | grep '^RESULT')
  server1=$(cpu_ticks "$server_pid"); redis1=$(cpu_ticks "$redis_pid")
  local field
  for field in $out; do
    case $field in
      rps=*) rps[$name]=${field#rps=} ;;
      p50_ms=*) p50[$name]=${field#p50_ms=} ;;
      p99_ms=*) p99[$name]=${field#p99_ms=} ;;
      non2xx=*) non2xx[$name]=${field#non2xx=} ;;
      requests=*) requests[$name]=${field#requests=} ;;
    esac
  done
  server_us[$name]=$(( (server1 - server0) * tick_us / requests[$name] ))
  redis_us[$name]=$(( (redis1 - redis0) * tick_us / requests[$name] ))
  sleep 1 # let work the scenario left behind (sandbox receipts) drain
}

# --- the sandbox server: start and check ---------------------------------------
main_port=$(free_port)
start_server main "$main_port"
main_url="http://127.0.0.1:$main_port"
# A check by number parses it: the first one in a process may wait for the
# phone metadata, which start-up loads on a thread of its own.
first_check_ms() { # base URL
  curl -s -o /dev/null -w '%{time_total}' "$1/v1/verifications/check" \
    -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
    -d '{"to": "+14155999999", "code": "123456"}' | awk '{ printf "%.1f", $1 * 1000 }'
}
first_ms=$(first_check_ms "$main_url")

wrk_run healthz "$main_pid" "$main_url/healthz" static.lua

# Enough data that no scenario runs dry even at the static route's rate.
budget=$(awk -v r="${rps[healthz]}" -v d="$DURATION" -v f="$PRELOAD_FACTOR" \
  'BEGIN { printf "%d", r * d * f + 1000 }')
wrong_count=$(( budget / 15 + 1000 )) # 19 wrong codes each before the 20th closes it
say "preloading $budget verifications to approve, $wrong_count to get wrong codes, 1000 calls"
"$load_bin" preload --redis "$redis_url" --otp-secret "$otp_secret" --count "$budget" \
  --first-number 2000000 --out "$work/right.txt"
"$load_bin" preload --redis "$redis_url" --otp-secret "$otp_secret" --count "$wrong_count" \
  --first-number 3000000 --out "$work/wrong.txt"
"$load_bin" preload --redis "$redis_url" --otp-secret "$otp_secret" --count 1000 --voice \
  --first-number 4000000 --out "$work/calls.txt"

# --- the store's ceiling: EVALSHA of the check script -----------------------------
ceiling_records=300000
now_ms=$(( $(date +%s%N) / 1000000 ))
redis-cli -p "$redis_port" EVAL "
  for i = 0, tonumber(ARGV[1]) - 1 do
    redis.call('HSET', ARGV[2] .. string.format('%012d', i),
      'to', '+14155550100', 'channel', 'sms', 'locale', 'en-US', 'status', 'pending',
      'created_at', ARGV[3], 'expires_at', ARGV[4], 'attempts', 0, 'max_attempts', 20,
      'sends', 1, 'last_sent_at', ARGV[3], 'deliveries', '[]', 'fallback', 0,
      'digest', ARGV[5], 'sealed', 'sealed')
  end
  return 1" 0 "$ceiling_records" 'ceiling:{bench}:v:' "$now_ms" $(( now_ms + 3600000 )) \
  "$(printf 'a%.0s' $(seq 64))" >/dev/null
check_sha=$(redis-cli -p "$redis_port" SCRIPT LOAD \
  "$(cat "$root/src/store/redis/lua/prelude.lua" "$root/src/store/redis/lua/check.lua")")
evalsha() { # requests
  # Id mode, a wrong digest, random pending records: HMGET, HSET, the view.
  redis-benchmark -p "$redis_port" -c "$CONNECTIONS" -n "$1" -r "$ceiling_records" --csv \
    EVALSHA "$check_sha" 1 'ceiling:{bench}:v:__rand_int__' id '' "$now_ms" 86400000 '' 1 \
    VEbench "$(printf 'b%.0s' $(seq 64))" | tail -1 | tr -d '"'
}
probe=$(evalsha 100000 | cut -d, -f2)
n=$(awk -v r="$probe" -v d="$DURATION" 'BEGIN { printf "%d", r * d }')
say "evalsha: redis-benchmark -c$CONNECTIONS -n $n EVALSHA check.lua"
redis0=$(cpu_ticks "$redis_pid")
IFS=, read -r _ r_rps _ _ r_p50 _ r_p99 _ < <(evalsha "$n")
redis1=$(cpu_ticks "$redis_pid")
rps[evalsha]=$r_rps; p50[evalsha]=$r_p50; p99[evalsha]=$r_p99; non2xx[evalsha]=0
server_us[evalsha]=-; redis_us[evalsha]=$(( (redis1 - redis0) * tick_us / n ))

wrk_run check_right "$main_pid" "$main_url" check_id.lua "$work/right.txt" "$api_key" 123456
wrk_run check_wrong "$main_pid" "$main_url" check_id.lua "$work/wrong.txt" "$api_key" 654321
wrk_run check_none "$main_pid" "$main_url" check_none.lua "$api_key"
wrk_run start "$main_pid" "$main_url" start.lua "$api_key"
main_rss=$(peak_rss_mib "$main_pid")
stop_server "$main_pid"

# --- the live-mode server: the signed answer URL --------------------------------
voice_port=$(free_port)
voice_base="http://127.0.0.1:$voice_port"
"$load_bin" sign --base "$voice_base" --token "$auth_token" --calls "$work/calls.txt" \
  --count "$budget" --out "$work/answers.txt" --body-out "$work/answer-body.txt"
start_server voice "$voice_port" PUBLIC_BASE_URL="$voice_base" PLIVO_AUTH_ID=MABENCHMARK0000000000 \
  PLIVO_CHECK_CREDENTIALS=off \
  PLIVO_AUTH_TOKEN="$auth_token" PLIVO_FROM_NUMBER=+14155550199 \
  PLIVO_API_BASE_URL=http://127.0.0.1:9 PLIVO_PHLO_BASE_URL=http://127.0.0.1:9
sleep 0.5
later_first_ms=$(first_check_ms "$voice_base")
wrk_run healthz_live "$voice_pid" "$voice_base/healthz" static.lua
wrk_run answer "$voice_pid" "$voice_base" answer.lua "$work/answers.txt" "$work/answer-body.txt"
voice_rss=$(peak_rss_mib "$voice_pid")
stop_server "$voice_pid"

# --- the report --------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
row() { # name label ceiling expected-non2xx
  local name=$1 label=$2 ceiling=$3 expect=$4
  local note=""
  if [ "${non2xx[$name]}" != "$expect" ]; then note=" (non-2xx: ${non2xx[$name]})"; fi
  printf '| %-34s | %9.0f | %7.2f | %7.2f | %-18s | %17s | %16s |%s\n' "$label" \
    "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "$ceiling" "${server_us[$name]}" \
    "${redis_us[$name]}" "$note"
}
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi; }

echo
echo "plivo-2fa load, $(date -u +%Y-%m-%d): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s"
echo
echo '| scenario                           |     req/s | p50 ms  | p99 ms  | ratio              | server CPU µs/req | Redis CPU µs/req |'
echo '|------------------------------------|----------:|--------:|--------:|--------------------|------------------:|-----------------:|'
row evalsha 'redis-benchmark EVALSHA check.lua' 'ceiling' 0
row healthz 'GET /healthz (sandbox server)' 'ceiling' 0
row check_right 'check, right code (by id)' "$(ratio "${rps[check_right]}" "${rps[evalsha]}") of EVALSHA" 0
row check_wrong 'check, wrong code (by id)' "$(ratio "${rps[check_wrong]}" "${rps[evalsha]}") of EVALSHA" 0
row check_none 'check, no pending (by number, 404)' "$(ratio "${rps[check_none]}" "${rps[evalsha]}") of EVALSHA" "${requests[check_none]}"
row start 'start (sandbox SMS)' "$(ratio "${rps[start]}" "${rps[check_right]}") of check" 0
row healthz_live 'GET /healthz (live-mode server)' 'ceiling' 0
row answer 'signed answer URL (live mode)' "$(ratio "${rps[answer]}" "${rps[healthz_live]}") of /healthz" 0
echo
echo "start-up to ready (/readyz 200): sandbox ${main_ready_ms} ms, live ${voice_ready_ms} ms"
echo "first check by number: right after ready ${first_ms} ms (sandbox), 0.5 s after ready ${later_first_ms} ms (live)"
echo "peak RSS (VmHWM): sandbox server ${main_rss} MiB, live server ${voice_rss} MiB"
echo
echo "targets:"
echo "  check >= 50% of EVALSHA, p99 < 5 ms:  $(met "${rps[check_right]} >= 0.5 * ${rps[evalsha]} && ${p99[check_right]} < 5")"
echo "  answer >= 70% of /healthz:            $(met "${rps[answer]} >= 0.7 * ${rps[healthz_live]}")"
echo "  start >= 30% of check:                $(met "${rps[start]} >= 0.3 * ${rps[check_right]}")"
echo "  peak RSS < 50 MiB:                    $(met "$main_rss < 50 && $voice_rss < 50")"
echo "  start-up to ready < 200 ms:           $(met "$main_ready_ms < 200 && $voice_ready_ms < 200")"
