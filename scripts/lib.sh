# Shell helpers shared by scripts/test.sh and the bench scripts; sourced, not run.
# The sourcing script sets `me` (its name, for messages) first.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() { # package…
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# A scratch directory ($work) and the background processes started for the
# run ($pids), stopped and removed on exit, whatever happens.
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

# Whether Redis is moving database DB's keys to a resized table (DEBUG
# HTSTATS lists a second, "rehashing target", table while it does).
rehashing() { # port db
  local stats
  stats=$(redis-cli -p "$1" DEBUG HTSTATS "$2" 2>&1 || true)
  [[ $stats == *'rehashing target'* ]]
}

# Waits until Redis has finished growing (or shrinking) the hash tables of
# its keyspace in database DB (0 unless given): a preload that takes the key
# count past a power of two leaves Redis moving every key to a table twice the
# size, a step on each command that touches the database and 1 ms in every
# 100 besides, and a scenario measured meanwhile pays for the move (the
# eighth and ninth rounds of BENCHMARKS.md measured it). The Redis must have
# been started with `--enable-debug-command local`. Gives up, saying so,
# after TIMEOUT seconds (120).
wait_for_rehash() { # port [db] [timeout]
  local port=$1 db=${2:-0} timeout=${3:-120} waited=0 hz
  rehashing "$port" "$db" || return 0
  # Redis's cron does the background part of the move; at ten times its
  # default rate the wait is ten times shorter. Put back afterwards.
  hz=$(redis-cli -p "$port" CONFIG GET hz | sed -n 2p)
  redis-cli -p "$port" CONFIG SET hz 100 >/dev/null
  while rehashing "$port" "$db"; do
    if [ "$waited" -ge $(( timeout * 10 )) ]; then
      echo "$me: Redis still rehashing database $db after ${timeout} s; measuring anyway" >&2
      break
    fi
    sleep 0.1
    waited=$(( waited + 1 ))
  done
  redis-cli -p "$port" CONFIG SET hz "$hz" >/dev/null
}

# Starts a throwaway redis-server on loopback (no persistence) and waits until
# it answers; its pid is the last of $pids. A caller that sets redis_wrapper
# (a command and its arguments, such as valgrind's) starts it under that
# command, and waits up to a minute rather than five seconds.
redis_wrapper=()
start_redis() { # port dir [extra args…]
  local port=$1 dir=$2 tries=100; shift 2
  mkdir -p "$dir"
  [ ${#redis_wrapper[@]} -eq 0 ] || tries=1200
  ${redis_wrapper[@]+"${redis_wrapper[@]}"} \
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no "$@" &
  pids+=($!)
  for _ in $(seq 1 "$tries"); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$me: redis-server on port $port did not start" >&2
  cat "$dir/redis.log" >&2
  return 1
}

# Builds the load harness's helper (benches/load.rs) if need be and prints
# the path of its binary. Needs $root and CARGO_TARGET_DIR as the caller has them.
load_helper() {
  local bin
  bin=$(cargo bench --bench load --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
  case $bin in /*) ;; *) bin=$root/$bin ;; esac
  [ -x "$bin" ] || { echo "$me: cannot find the load helper binary" >&2; return 1; }
  echo "$bin"
}
