#!/usr/bin/env bash
# Checks the Debian package (run by .ci/run after deploy/debian/build.sh): lintian with no
# error or warning (overrides carry their reason), then, in a fresh Debian root made by
# mmdebstrap (as the container test does), deploy/debian/installed-checks.sh installs it,
# checks the user, directories, conffile, unit, binary, manual page and completion, and
# purges it. Needs root, lintian and mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(ls -t target/debian/sdm-watch_*.deb | head -n 1)
started=$(date +%s)
if ! said=$(lintian --fail-on error,warning "$deb" 2>&1); then
  echo "$said" | grep -v 'running with root privileges'
  echo "lintian found problems"; exit 1
fi
echo "lintian: no errors or warnings ($(basename "$deb"))"
mmdebstrap --quiet --variant=minbase --mode=root --include=systemd,man-db,bash-completion \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --include=procps \
  --customize-hook="copy-in '$deb' /tmp" \
  --customize-hook="chroot \"\$1\" mv /tmp/$(basename "$deb") /tmp/sdm-watch.deb" \
  --customize-hook="copy-in deploy/debian/installed-checks.sh /tmp" \
  --customize-hook='chroot "$1" sh /tmp/installed-checks.sh' \
  bookworm /dev/null
echo "the package installs, checks out and purges cleanly in a fresh Debian root ($(( $(date +%s) - started )) s)"
