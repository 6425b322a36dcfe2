#!/usr/bin/env bash
# Builds the Debian package, target/packages/sdm-watch_VERSION-REVISION_ARCH.deb, and prints
# its path: makes the assets that are generated (the manual page and completions, from the
# binary itself; the systemd unit with ExecStart at /usr/bin and the package's user), then
# runs `cargo deb`. Needs cargo-deb (`cargo install --locked cargo-deb`).
#   deploy/debian/build.sh           # a release build (the dist profile: thin LTO)
#   deploy/debian/build.sh dev       # the debug binary CI has built already (same package)
#   SDM_WATCH_DEB_REVISION=3 deploy/debian/build.sh dev   # the same, as a later revision
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-dist}
cargo build --locked --quiet --profile "$profile" --bin sdm-watch
case "$profile" in
  dev) binary=target/debug/sdm-watch ;;
  *) binary=target/$profile/sdm-watch ;;
esac
assets=target/debian-assets
rm -rf "$assets" && mkdir -p "$assets"
"$binary" man | gzip -9n > "$assets/sdm-watch.1.gz"
"$binary" completions bash > "$assets/sdm-watch.bash"
"$binary" completions zsh > "$assets/_sdm-watch"
"$binary" completions fish > "$assets/sdm-watch.fish"
# The packaged unit: the binary where the package puts it, and the package's static system
# user instead of DynamicUser= (which would move the state to /var/lib/private), so the
# configuration directory is the service group's to read (0750, root:sdm-watch).
sed -e 's|/usr/local/bin/sdm-watch|/usr/bin/sdm-watch|' \
    -e 's|^DynamicUser=yes$|User=sdm-watch\nGroup=sdm-watch|' \
    -e 's|^ConfigurationDirectory=sdm-watch$|ConfigurationDirectory=sdm-watch\nConfigurationDirectoryMode=0750|' \
    -e 's|^# systemd unit for sdm-watch. Install the binary as /usr/bin/sdm-watch, the config as|# systemd unit for sdm-watch (Debian package). The config is|' \
    deploy/sdm-watch.service > "$assets/sdm-watch.service"
export SDM_WATCH_REVISION=${SDM_WATCH_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# SDM_WATCH_DEB_REVISION: a later revision of the same build (deploy/debian/check.sh
# upgrades to one).
revision=()
if [ -n "${SDM_WATCH_DEB_REVISION:-}" ]; then
  revision=(--deb-revision "$SDM_WATCH_DEB_REVISION")
fi
if ! deb=$(cargo deb --no-build --locked --profile "$profile" "${revision[@]}" --output target/debian/ 2>"$log"); then
  cat "$log" >&2
  exit 1
fi
# cargo-deb frowns on packaging the dev profile; CI does it knowingly, to build once.
grep -v 'dev profile is not supported\|debug symbols set\|^ *To enable debug symbols' "$log" >&2 || true
# cargo deb clears target/debian of earlier packages: each one built is kept in
# target/packages, whose path is printed last (callers take it with `| tail -n 1`).
mkdir -p target/packages
cp "$deb" target/packages/
echo "target/packages/$(basename "$deb")"
