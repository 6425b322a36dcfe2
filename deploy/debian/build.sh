#!/usr/bin/env bash
# Builds the Debian package, target/debian/sdm-watch_VERSION-1_ARCH.deb: makes the assets
# that are generated (the manual page and completions, from the binary itself; the systemd
# unit with ExecStart at /usr/bin and the package's user), then runs `cargo deb`. Needs
# cargo-deb (`cargo install --locked cargo-deb`).
#   deploy/debian/build.sh           # a release build
#   deploy/debian/build.sh dev       # the debug binary CI has built already (same package)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
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
# The packaged unit: the binary where the package puts it, and the package's system user
# (DynamicUser= takes a static user of that name when there is one).
sed -e 's|/usr/local/bin/sdm-watch|/usr/bin/sdm-watch|' \
    -e 's|^DynamicUser=yes$|DynamicUser=yes\nUser=sdm-watch\nGroup=sdm-watch|' \
    -e 's|^# systemd unit for sdm-watch. Install the binary as /usr/bin/sdm-watch, the config as|# systemd unit for sdm-watch (Debian package). The config is|' \
    deploy/sdm-watch.service > "$assets/sdm-watch.service"
export SDM_WATCH_REVISION=${SDM_WATCH_REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo deb --no-build --locked --profile "$profile" --output target/debian/ >/dev/null 2>"$log"; then
  cat "$log" >&2
  exit 1
fi
# cargo-deb frowns on packaging the dev profile; CI does it knowingly, to build once.
grep -v 'dev profile is not supported\|debug symbols set\|^ *To enable debug symbols' "$log" >&2 || true
ls target/debian/sdm-watch_*.deb
