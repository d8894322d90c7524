# Shell helpers shared by scripts/test.sh and bench/load.sh; sourced, not run.
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
