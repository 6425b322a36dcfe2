# syntax=docker/dockerfile:1
# sdm-watch container image: built in the official Rust image, run from an empty image
# holding only the binary, the C libraries it links, CA certificates and its directories:
# no shell, no package manager, uid and gid 10001. State lives in the /var/lib/sdm-watch
# volume, the config at /etc/sdm-watch/config.toml (mount your own), secrets as files
# (e.g. /run/secrets/sdm-token).
#
# The builder is a build argument so that it can be pinned by digest where a registry is
# reachable (RUST_IMAGE=rust:1.95-slim-bookworm@sha256:...); see docs/operations.md.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
FROM ${RUST_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# The build's settings: SQLite without the extensions sdm-watch never uses.
COPY .cargo ./.cargo
COPY src ./src
# The manifest names the benchmark target and the test kit (a workspace member), so
# cargo wants their sources present.
COPY benches ./benches
COPY tests/it/helpers ./tests/it/helpers
# The commit built, for sdm_watch_build_info (the image's context has no .git):
#   podman build --build-arg SDM_WATCH_REVISION=$(git rev-parse --short=12 HEAD) .
ARG SDM_WATCH_REVISION=unknown
ENV SDM_WATCH_REVISION=${SDM_WATCH_REVISION}
# Compiled dependencies stay in a build cache between builds: a change to the sources
# recompiles sdm-watch alone. (Crates are fetched into /usr/local/cargo/registry, which a
# build may lend from the host: `-v ~/.cargo/registry:/usr/local/cargo/registry`.)
RUN --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile dist --locked --bin sdm-watch \
 && install -D -m 0755 target/dist/sdm-watch /rootfs/usr/local/bin/sdm-watch
# The runtime's files: the shared libraries the binary links (ldd names them), the CA
# certificates (reqwest and lettre verify TLS with the system's roots), the user's names,
# the state directory (the user's alone) and the config.
RUN ldd /rootfs/usr/local/bin/sdm-watch \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' \
      | xargs -I{} cp -L --parents {} /rootfs/ \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && printf 'sdm-watch:x:10001:10001:sdm-watch:/var/lib/sdm-watch:/nonexistent\n' > /rootfs/etc/passwd \
 && printf 'sdm-watch:x:10001:\n' > /rootfs/etc/group \
 && install -d -m 0700 /rootfs/var/lib/sdm-watch \
 && install -d -m 1777 /rootfs/tmp
COPY deploy/config.container.toml /rootfs/etc/sdm-watch/config.toml

FROM scratch
ARG SDM_WATCH_REVISION=unknown
LABEL org.opencontainers.image.title="sdm-watch" \
      org.opencontainers.image.description="Alerts on Akeneo Supplier Data Manager jobs: polls the SDM API, keeps each job's last status, sends e-mail and webhook alerts" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${SDM_WATCH_REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="scratch"
COPY --from=build /rootfs/ /
# COPY gives what it copies to root: the state directory is the user's.
COPY --from=build --chown=10001:10001 /rootfs/var/lib/sdm-watch /var/lib/sdm-watch
USER 10001:10001
VOLUME ["/var/lib/sdm-watch"]
EXPOSE 10187
ENV SDM_WATCH_CONFIG=/etc/sdm-watch/config.toml
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["sdm-watch", "healthcheck"]
ENTRYPOINT ["sdm-watch"]
CMD ["run"]
