#!/usr/bin/env bash
# Checks the deploy kit in deploy/. Opt-in: not part of ./scripts/test.sh
# (promtool comes with Debian's `prometheus` package, a large install that the
# test command has no other use for). tests/ops.rs checks, in the test command,
# that the dashboard and the rules use only metrics the server exports.
#
#   ./scripts/check-deploy.sh
#
# - `promtool check config` on the Prometheus configuration, and
#   `promtool check rules` on the alert rules;
# - `promtool test rules`: the rules' unit tests (deploy/prometheus/alerts.test.yml);
# - every query of the Grafana dashboard, parsed by promtool (written out as
#   recording rules, with Grafana's $__rate_interval as 5m);
# - the compose file, with `docker compose config` (or docker-compose) when
#   one is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

me=check-deploy.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! command -v promtool >/dev/null; then
  echo "$me: installing prometheus (Debian package) for promtool" >&2
  apt_install prometheus
fi

promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)

python3 - deploy/grafana/dashboards/plivo-2fa.json >"$work/dashboard-queries.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
assert dashboard["uid"] and dashboard["panels"], "a dashboard with panels"
print("groups:\n  - name: dashboard-queries\n    rules:")
count = 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        assert target["datasource"]["uid"] == "plivo2fa-prometheus", panel["title"]
        expr = target["expr"].replace("$__rate_interval", "5m")
        count += 1
        print(f"      - record: dashboard:query_{count}")
        print(f"        expr: {json.dumps(expr)}")
assert count, "the dashboard has queries"
PY
echo "Dashboard queries ($(grep -c 'record:' "$work/dashboard-queries.yml") of them):"
promtool check rules "$work/dashboard-queries.yml"

if docker compose version >/dev/null 2>&1; then
  GRAFANA_ADMIN_PASSWORD=check docker compose -f deploy/compose.yaml config -q
  echo "deploy/compose.yaml: valid (docker compose)"
elif command -v docker-compose >/dev/null; then
  GRAFANA_ADMIN_PASSWORD=check docker-compose -f deploy/compose.yaml config -q
  echo "deploy/compose.yaml: valid (docker-compose)"
else
  echo "$me: no docker compose here: deploy/compose.yaml not checked" >&2
fi
echo "$me: OK"
