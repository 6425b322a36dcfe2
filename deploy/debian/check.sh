#!/usr/bin/env bash
# Checks the Debian package by living it (run by .ci/run after deploy/debian/build.sh):
#   deploy/debian/check.sh PACKAGE.deb LATER_REVISION.deb
# lintian with no error or warning (overrides carry their reason) and the packaged unit's
# exposure (systemd-analyze security, 1.5 at most); then a fresh minimal Debian bookworm
# root (mmdebstrap, minbase plus systemd, with the package's dependencies downloaded but not
# installed) is booted under a real systemd (podman --systemd=always, no network), and
# deploy/debian/installed-checks.sh installs the package there, starts it against the
# simulated API (`sdm-watch demo --api --receiver`), sees an alert delivered, reloads,
# upgrades to the later revision, removes, purges and finds nothing left.
# The simulator is test equipment, not the package under test: the binary of PACKAGE.deb by
# default, or $SDM_WATCH_SIMULATOR (to check an older package, whose binary has none).
# $SDM_WATCH_CHECK_INCLUDE adds packages to the root (to see past a first failure).
# Needs root, lintian, mmdebstrap, podman and runc.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:?usage: check.sh PACKAGE.deb LATER_REVISION.deb}
next=${2:?usage: check.sh PACKAGE.deb LATER_REVISION.deb}
started=$(date +%s)
say() { printf '[debian-check %3ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

if ! said=$(lintian --fail-on error,warning "$deb" 2>&1); then
  echo "$said" | grep -v 'running with root privileges'
  echo "lintian found problems"; exit 1
fi
say "lintian: no errors or warnings ($(basename "$deb"))"

work=$(mktemp -d)
name="sdm-watch-deb-$$"
image="localhost/sdm-watch-deb-check:$$"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

dpkg-deb -x "$deb" "$work/unpacked"
unit="$work/unpacked/usr/lib/systemd/system/sdm-watch.service"
score=$(systemd-analyze security --offline=true "$unit" 2>&1 | tail -n 1)
systemd-analyze security --offline=true --threshold=15 "$unit" >/dev/null 2>&1 || {
  systemd-analyze security --offline=true "$unit" | grep -v '✓' || true
  echo "the packaged unit's exposure is above 1.5"; exit 1
}
say "the packaged unit: $score"

# The root: what a minimal server has (systemd as init), and the package's dependencies
# (ca-certificates, procps) in apt's cache only, for an install without network.
mkdir -p "$work/debs"
cp "$deb" "$work/debs/first.deb"
cp "$next" "$work/debs/next.deb"
cp "${SDM_WATCH_SIMULATOR:-$work/unpacked/usr/bin/sdm-watch}" "$work/debs/sdm-sim"
include=systemd,man-db,bash-completion${SDM_WATCH_CHECK_INCLUDE:+,$SDM_WATCH_CHECK_INCLUDE}
mmdebstrap --quiet --variant=minbase --mode=root --include="$include" \
  --dpkgopt='path-exclude=/usr/share/locale/*' --skip=cleanup/apt \
  --customize-hook="mkdir -p \"\$1/root/debs\"" \
  --customize-hook="copy-in '$work/debs/first.deb' '$work/debs/next.deb' '$work/debs/sdm-sim' /root/debs" \
  --customize-hook="copy-in deploy/debian/installed-checks.sh /root" \
  --customize-hook='chroot "$1" apt-get install --download-only --install-recommends -y -qq /root/debs/first.deb >/dev/null' \
  bookworm "$work/root.tar"
say "a fresh minbase bookworm root with systemd ($(( $(stat -c %s "$work/root.tar") / 1024 / 1024 )) MiB)"

# runc and ulimits within the machine's limits (see the file).
export CONTAINERS_CONF="$PWD/deploy/containers.conf"
podman import --quiet "$work/root.tar" "$image" >/dev/null
rm -f "$work/root.tar"
podman run -d --name "$name" --systemd=always --network none "$image" /lib/systemd/systemd >/dev/null
state=""
for _ in $(seq 1 120); do
  state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.5
done
case "$state" in
  running|degraded) ;;
  *) podman logs "$name" | tail -n 40; echo "systemd did not boot in the container: '$state'"; exit 1 ;;
esac
say "booted under systemd ($(podman exec "$name" systemctl --version | head -n 1)): $state"

if ! podman exec "$name" bash /root/installed-checks.sh; then
  echo "--- the journal:"
  podman exec "$name" journalctl --no-pager -b -n 60 -u sdm-watch -u sdm-sim || true
  echo "the package failed under a real systemd"; exit 1
fi
say "installed, started, alerted, reloaded, upgraded, removed and purged under systemd"
