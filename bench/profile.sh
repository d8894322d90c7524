#!/usr/bin/env bash
# Profiles the release server under load (issue 16): runs bench/load.sh with
# the chosen scenarios under `perf record -e cpu-clock --call-graph dwarf`
# (software clock sampling: this VM has no hardware counters, and DWARF
# unwinding needs no frame pointers or debug build), then writes, for each
# scenario, the top symbols by self time and by children (inclusive) time, and
# the split between the kernel, the server's own code and the C library.
#
#   ./bench/profile.sh                         # the default scenarios, into target/profile/
#   SCENARIOS="check_right answer" ./bench/profile.sh
#
# Scenario names are load.sh's (check_right, check_wrong, check_right_num,
# check_wrong_num, check_none, start, answer, start_live, healthz,
# healthz_live). The load table load.sh prints along the way is perturbed by
# perf (it costs the sampled server CPU) and is not one to publish; the
# profiles' shares are what this run is for.
#
# Environment: SCENARIOS, OUT (target/profile), TOP (30: lines per listing),
# PROFILE_FREQ (999 Hz), and load.sh's own (DURATION, CONNECTIONS, …).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

SCENARIOS=${SCENARIOS:-check_right check_wrong check_right_num answer start_live}
OUT=${OUT:-$root/target/profile}
TOP=${TOP:-30}
export PROFILE_FREQ=${PROFILE_FREQ:-999}

mkdir -p "$OUT"
rm -f "$OUT"/*.data "$OUT"/*.txt
PROFILE="$SCENARIOS" PROFILE_DIR="$OUT" "$root/bench/load.sh" | tee "$OUT/load.txt"

# report DATA perf-report-options…: perf report's table rows, without its
# comment header and the IPC columns it pads them with.
report() {
  local data=$1; shift
  perf report -i "$data" --stdio --no-inline "$@" 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -e 's/ *- *- *$//' || true
}

# Self time summed by crate (the first path segment of the symbol; `[k]`
# symbols are the kernel's, unqualified user-space ones the C library's).
by_crate() { # data
  report "$1" --no-children --sort dso,symbol -g none --percent-limit 0 |
    awk '{
      pct = $1; sub(/%/, "", pct)
      if ($3 == "[k]") { crate = "kernel" }
      else {
        sym = $4; sub(/^</, "", sym); sub(/^&/, "", sym)
        if (sym ~ /::/) { crate = sym; sub(/::.*/, "", crate); sub(/<.*/, "", crate) }
        else if (sym ~ /^0x/) { crate = "(unknown)" }
        else { crate = $2 " (unqualified symbols)" }
      }
      total[crate] += pct
    }
    END { for (c in total) printf "%7.2f%%  %s\n", total[c], c }' | sort -rn | head -n "$TOP"
}

for s in $SCENARIOS; do
  data=$OUT/$s.data
  [ -s "$data" ] || { echo "profile.sh: no profile for $s" >&2; continue; }
  {
    echo "## $s: $(perf report -i "$data" --stdio --header-only 2>/dev/null |
      sed -n 's/^# sample duration : *//p') sampled, $(perf report -i "$data" --stdio \
      --sort dso -g none 2>/dev/null | sed -n 's/^# Samples: \(.*\) of event.*/\1 samples/p')"
    echo
    echo "### self, by shared object"
    report "$data" --no-children --sort dso -g none --percent-limit 0.3
    echo
    echo "### self, by crate"
    by_crate "$data"
    echo
    echo "### top symbols, self"
    report "$data" --no-children --sort symbol -g none --percent-limit 0.3 | head -n "$TOP"
    echo
    echo "### top symbols, children (self + what they call)"
    report "$data" --children --sort symbol -g none --percent-limit 1 | head -n "$TOP"
    echo
    echo "### plivo_2fa's own functions, children"
    report "$data" --children --sort symbol -g none --percent-limit 0.5 | grep 'plivo_2fa' |
      head -n "$TOP"
  } >"$OUT/$s.txt"
  echo "profile.sh: $OUT/$s.txt" >&2
done
echo "profile.sh: done; the perf data is in $OUT/*.data (perf report -i FILE to explore)"
