#!/usr/bin/env bash
# What the two CPU targets of issue 16 would take, measured before anything
# is built: a check's cost to Redis as the store's script (check.lua, a
# wrong code then the right one), as a script-free MULTI of native commands,
# as a script over a record kept as one string (wrong, then right) and as
# load.sh's minimal script; and one GET's cost to the client through
# redis-rs's multiplexed connection and on a socket each task owns (a
# hand-written client's shape). The shapes take turns, round after round,
# against one Redis; see benches/load/shapes.rs for each.
#
#   ./bench/shapes.sh
#
# Environment: ROUNDS (3), SECONDS_EACH (3), COUNT (300000 records a shape
# and round; at the defaults Redis grows to about 7 GB and the run takes
# about 8 minutes, most of it the preload and the keyspace's move), TASKS
# (32).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
me=shapes.sh
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
command -v redis-server >/dev/null || apt_install redis-server
load_bin=$(load_helper)
redis_port=$(free_port)
start_redis "$redis_port" "$work/redis" --enable-debug-command local
echo "$me: load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$load_bin" shapes --redis "redis://127.0.0.1:$redis_port" --redis-pid "${pids[-1]}" \
  --rounds "${ROUNDS:-3}" --seconds "${SECONDS_EACH:-3}" --count "${COUNT:-300000}" \
  --tasks "${TASKS:-32}"
