#!/usr/bin/env bash
# Checks the deploy kit in deploy/. Opt-in: not part of ./scripts/test.sh
# (promtool comes with Debian's `prometheus` package, a large install that the
# test command has no other use for). tests/api/ops.rs checks, in the test command,
# that the dashboard and the rules use only metrics the server exports.
#
#   ./scripts/check-deploy.sh            # the files
#   ./scripts/check-deploy.sh --live     # and the dashboard against a real server
#
# - `promtool check config` on the Prometheus configuration, and
#   `promtool check rules` on the alert rules;
# - `promtool test rules`: the rules' unit tests (deploy/prometheus/alerts.test.yml);
# - every query of the Grafana dashboard, parsed by promtool (written out as
#   recording rules, with Grafana's $__rate_interval as 5m);
# - the compose file, with `docker compose config` (or docker-compose) when
#   one is installed;
# - with --live: the server (target/release/plivo-2fa, or PLIVO_2FA_BIN; built
#   when missing) in sandbox mode, a Prometheus scraping it with the alert
#   rules loaded, some traffic (approved and wrong checks, an undelivered SMS
#   and its fallback call, a Plivo 500, a refused country, an unsigned
#   callback), then every dashboard query against that Prometheus: each must
#   answer, and each but the pumping detector's (it needs an attack) with data.
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

if [ "${1:-}" = --live ]; then
  bin=${PLIVO_2FA_BIN:-target/release/plivo-2fa}
  [ -x "$bin" ] || cargo build --release --locked --bin plivo-2fa
  command -v jq >/dev/null || apt_install jq
  server_port=$(free_port)
  prom_port=$(free_port)
  key=check-deploy-key-0123456789
  LISTEN_ADDR=127.0.0.1:$server_port API_KEYS=$key SCHEDULER_POLL_MS=50 "$bin" >"$work/server.log" 2>&1 &
  pids+=($!)
  cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$PWD/deploy/prometheus/alerts.yml]
scrape_configs:
  - job_name: plivo-2fa
    static_configs: [{targets: ["127.0.0.1:$server_port"]}]
YAML
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
  pids+=($!)
  base="http://127.0.0.1:$server_port"
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  post() {
    curl -s -o /dev/null -X POST "$base$1" -H "Authorization: Bearer $key" \
      -H 'Content-Type: application/json' -d "$2"
  }
  code_for() {
    curl -s "$base/sandbox/messages" \
      | jq -r --arg to "$1" 'map(select(.to == $to)) | last | .text | capture("\\b(?<c>[0-9]{6})\\b").c'
  }
  for to in +14155550100 +14155550101; do
    post /v1/verifications "{\"to\": \"$to\", \"channel\": \"sms\"}"
    post /v1/verifications/check "{\"to\": \"$to\", \"code\": \"$(code_for "$to")\"}"
  done
  post /v1/verifications '{"to": "+14155550102", "channel": "sms"}'
  post /v1/verifications/check '{"to": "+14155550102", "code": "000000"}'
  post /v1/verifications '{"to": "+12025550153", "channel": "sms"}'   # undelivered: a fallback call
  post /v1/verifications '{"to": "+12025550150", "channel": "sms"}'   # Plivo answers 500
  post /v1/verifications '{"to": "+5491123456789", "channel": "sms"}' # a country not allowed
  curl -s -o /dev/null -X POST "$base/plivo/message-status/VE00000000000000000000000000000000" \
    -d Status=delivered                                                # no signature
  # Enough scrapes after the traffic for the rates.
  sleep 8
  python3 - deploy/grafana/dashboards/plivo-2fa.json "$prom_port" <<'PY'
import json, sys, urllib.parse, urllib.request
dashboard, port = json.load(open(sys.argv[1])), sys.argv[2]
empty = []
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        query = target["expr"].replace("$__rate_interval", "1m")
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        answer = json.load(urllib.request.urlopen(url))
        assert answer["status"] == "success", (panel["title"], answer)
        series = len(answer["data"]["result"])
        print(f"  {series:3} series  {panel['title']}: {target['legendFormat']}")
        # The pumping detector's pauses need an attack to show.
        if series == 0 and "pumping" not in target["legendFormat"]:
            empty.append(panel["title"])
if empty:
    sys.exit(f"no data for: {empty}")
PY
  rules=$(curl -s "http://127.0.0.1:$prom_port/api/v1/rules" | jq '[.data.groups[].rules[]] | length')
  health=$(curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | jq -r '.data.activeTargets[0].health')
  [ "$health" = up ] || { echo "$me: Prometheus's target is $health" >&2; exit 1; }
  echo "live: every dashboard query answered with data; Prometheus loaded $rules rules; its target is $health"
fi
echo "$me: OK"
