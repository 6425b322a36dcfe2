#!/usr/bin/env bash
# Checks deploy/grafana/sdm-watch.json (run by .ci/run): every PromQL expression of its
# panels and variables parses, by `promtool check rules` on a rules file made of them
# (Grafana's variables replaced by plain values). That every metric it names is one the
# daemon exports is checked against a live /metrics by tests/it/deploy_kit.rs.
set -euo pipefail
cd "$(dirname "$0")"
rules=$(mktemp --suffix=.yml)
trap 'rm -f "$rules"' EXIT
python3 - sdm-watch.json > "$rules" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for panel in panels:
        exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
        walk(panel.get("panels", []))
walk(dashboard["panels"])
for variable in dashboard["templating"]["list"]:
    query = variable.get("definition", "")
    if query.startswith("label_values("):
        # label_values(EXPR, label): the selector is PromQL.
        inner = query[len("label_values("):query.rindex(",")]
        exprs.append(inner)
print("groups:\n  - name: dashboard\n    rules:")
for n, expr in enumerate(exprs):
    for variable, value in [("$__rate_interval", "5m"), ("$instance", ".*"), ("$organisation", ".*")]:
        expr = expr.replace(variable, value)
    print(f"      - record: dashboard:expr_{n}\n        expr: {json.dumps(expr)}")
print(f"{len(exprs)} expressions", file=sys.stderr)
PY
promtool check rules "$rules"
