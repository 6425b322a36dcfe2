#!/usr/bin/env bash
# What the tests need besides Rust, gcc and Python, installed if missing:
# - Chromium, headless: tests/it/console.rs loads the status page in it (Debian package);
# - a PostgreSQL server: tests/it/replicas.rs, store.rs and chaos.rs (and the benchmark)
#   start throwaway clusters (Debian package;
#   its binaries, not its service);
# - Alertmanager and amtool: tests/it/incident_tools.rs posts incidents to real ones
#   (Debian package prometheus-alertmanager; its binaries, not its service);
# - the official Adaptive Card schema and jsonschema: tests/it/formats.rs validates Teams
#   cards with them (tests/requirements.txt, from PyPI); jsonschema also checks PagerDuty
#   events against a schema of PagerDuty's documented fields (tests/data); Playwright drives the console's forms
#   in that Chromium (tests/it/console_actions.rs);
# - html-validate (npm, tests/node, with the machine's Node.js): the status page and the
#   HTML e-mails are validated with it.
# Needs root (or sudo) for apt-get the first time; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt 2>&1 \
  | grep -v 'Running pip as the .root. user' || true
if [ ! -x tests/node/node_modules/.bin/html-validate ]; then
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi
