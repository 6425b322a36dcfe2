#!/usr/bin/env bash
# Builds the sdm-watch image with podman and smoke-tests it: its size (60 MB at most), user,
# labels and the absence of a shell, --version, `demo` for a few seconds (read-only, every
# capability dropped) with /healthz fetched from the host, the image's own healthcheck, a
# clean stop.
#
# No container registry is reachable on the project's machines, so when the Dockerfile's
# builder image is missing locally this script builds a stand-in under the same name and
# says so: rust:1.95-slim-bookworm from Debian's packages (mmdebstrap) and this machine's
# Rust toolchain. The Dockerfile itself is used unchanged (its runtime stage is scratch).
# Needs root, podman, buildah, runc and mmdebstrap (Debian packages; see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { printf '[container-test %3ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

work=$(mktemp -d)
name="sdm-watch-smoke-$$"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# runc and ulimits within the machine's limits (see the file).
export CONTAINERS_CONF="$PWD/deploy/containers.conf"

have_image() { podman image exists "$1"; }

if ! have_image rust:1.95-slim-bookworm; then
  toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
  toolchain_dir="${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$toolchain"
  say "rust:1.95-slim-bookworm is not here: building a stand-in from Debian and this machine's toolchain ($toolchain)"
  mmdebstrap --quiet --variant=minbase --mode=root --include=gcc,libc6-dev,ca-certificates \
    --customize-hook="mkdir -p \"\$1/usr/local/rustup/toolchains\" \"\$1/usr/local/cargo/bin\"" \
    --customize-hook="tar -C '$toolchain_dir/..' --exclude='*/share/doc' --exclude='*/lib/rustlib/src' -cf - '$toolchain' | tar -C \"\$1/usr/local/rustup/toolchains\" -xf -" \
    --customize-hook="printf 'version = \"12\"\ndefault_toolchain = \"$toolchain\"\nprofile = \"minimal\"\n' > \"\$1/usr/local/rustup/settings.toml\"" \
    --customize-hook="cp -a '${CARGO_HOME:-$HOME/.cargo}/bin/rustup' \"\$1/usr/local/cargo/bin/\"" \
    --customize-hook="for tool in cargo rustc rustdoc; do ln -sf rustup \"\$1/usr/local/cargo/bin/\$tool\"; done" \
    bookworm "$work/rust.tar"
  podman import --quiet \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rust.tar" rust:1.95-slim-bookworm >/dev/null
  podman tag rust:1.95-slim-bookworm docker.io/library/rust:1.95-slim-bookworm
  rm -f "$work/rust.tar"
fi

# Build leftovers of earlier runs (dangling images) go after a day; recent ones stay as cache.
podman image prune -f --filter until=24h >/dev/null 2>&1 || true
say "building the image from the Dockerfile"
# The build stage fetches crates from crates.io over the host's network; the host's cargo
# cache is lent to it so that crates already downloaded are not fetched again (and the
# compiled dependencies stay in the Dockerfile's cache mount between builds).
podman build --quiet --format docker --network host --isolation chroot \
  --build-arg SDM_WATCH_REVISION="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  -v "${CARGO_HOME:-$HOME/.cargo}/registry:/usr/local/cargo/registry" \
  -t sdm-watch:test . >/dev/null
size=$(podman image inspect sdm-watch:test --format '{{.Size}}')
say "image built: sdm-watch:test, $(( size / 1000 / 1000 )) MB ($size bytes)"
[ "$size" -le 60000000 ] || { echo "the image is over 60 MB"; exit 1; }

version=$(podman run --rm --no-healthcheck sdm-watch:test --version)
[[ "$version" == "sdm-watch "* ]] || { echo "unexpected --version: $version"; exit 1; }
say "--version: $version"

user=$(podman image inspect sdm-watch:test --format '{{.Config.User}}')
[ "$user" = 10001:10001 ] || { echo "the image runs as '$user', not 10001:10001"; exit 1; }
for label in title description version revision licenses; do
  value=$(podman image inspect sdm-watch:test --format "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")
  [ -n "$value" ] || { echo "the image has no org.opencontainers.image.$label label"; exit 1; }
done
for tool in /bin/sh /bin/bash /usr/bin/apt-get /usr/bin/dpkg; do
  if podman run --rm --no-healthcheck --entrypoint "$tool" sdm-watch:test -c true >/dev/null 2>&1; then
    echo "the image has $tool"; exit 1
  fi
done
say "runs as 10001:10001, OCI labels set, no shell and no package manager"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'demo-token' > "$work/sdm-token"
chmod 644 "$work/sdm-token"
# --no-healthcheck: podman would schedule the HEALTHCHECK with systemd timers, which a
# machine without a running systemd lacks; the same check is run by hand below.
# Read-only, every capability dropped, no privilege to gain: /tmp (the demo's state) is
# the tmpfs podman gives a read-only container.
podman run -d --no-healthcheck --name "$name" -p "127.0.0.1:$port:10187" \
  --read-only --cap-drop=ALL --security-opt=no-new-privileges \
  -e SDM_WATCH_HTTP__LISTEN=0.0.0.0:10187 \
  -v "$work/sdm-token:/run/secrets/sdm-token:ro" \
  sdm-watch:test demo >/dev/null
say "demo started; host port $port"

healthz=""
for _ in $(seq 1 40); do
  healthz=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2).read().decode().strip())" 2>/dev/null) && break
  sleep 0.5
done
[ "$healthz" = ok ] || { podman logs "$name"; echo "/healthz did not answer ok from the host"; exit 1; }
say "/healthz from the host: $healthz"

sleep 8
podman exec "$name" sdm-watch healthcheck
logs=$(podman logs "$name" 2>/dev/null)
grep -qE '>>> \[[a-z0-9-]+\] job\.done' <<<"$logs" || { echo "$logs"; echo "the demo printed no alert"; exit 1; }
grep -q 'signature verified' <<<"$logs" || { echo "$logs"; echo "an alert was not verified"; exit 1; }
say "demo printed $(grep -c '^>>> ' <<<"$logs") alerts, signatures verified"

podman stop --time 15 "$name" >/dev/null
code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { podman logs "$name"; echo "the demo exited $code on SIGTERM"; exit 1; }
say "stopped with SIGTERM, exit status 0"
say "container test passed in $(( $(date +%s) - started ))s"
