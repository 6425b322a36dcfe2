#!/usr/bin/env bash
# Checks deploy/sdm-watch.service offline: `systemd-analyze verify` must print nothing at all
# (it reports mistakes such as a misspelt key only as warnings, with exit status 0), and
# `systemd-analyze security` must rate the sandbox 1.5 or lower. BINARY is the sdm-watch to
# point ExecStart at (verify needs it to exist).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary=${1:?usage: check-systemd.sh path/to/sdm-watch}
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/sdm-watch|$binary|" "$here/sdm-watch.service" > "$work/sdm-watch.service"

# --man=no: the manual page is installed by the package, not on this machine.
output=$(systemd-analyze verify --man=no "$work/sdm-watch.service" 2>&1) || { echo "$output"; exit 1; }
if [ -n "$output" ]; then
  echo "systemd-analyze verify complained:"; echo "$output"; exit 1
fi
echo "systemd-analyze verify: no warnings"

score=$(systemd-analyze security --offline=true "$work/sdm-watch.service" 2>&1 | tail -n 1)
echo "systemd-analyze security: $score"
systemd-analyze security --offline=true --threshold=15 "$work/sdm-watch.service" >/dev/null 2>&1 || {
  systemd-analyze security --offline=true "$work/sdm-watch.service" | grep -v '✓' || true
  echo "the unit's exposure is above 1.5"; exit 1
}

# What no analyzer asks for but the listener needs: room for its capped connections.
grep -qx 'LimitNOFILE=4096' "$here/sdm-watch.service" || {
  echo "the unit must set LimitNOFILE=4096 (the console's connection caps need the room)"; exit 1
}
echo "LimitNOFILE: 4096"
