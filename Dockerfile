# sdm-watch container image: build with the official Rust image, run from Debian slim as a
# non-root user. State lives in the /var/lib/sdm-watch volume, the config at
# /etc/sdm-watch/config.toml (mount your own), secrets as files (e.g. /run/secrets/sdm-token).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# The manifest names the benchmark target and the test kit (a workspace member), so
# cargo wants their sources present.
COPY benches ./benches
COPY tests/it/helpers ./tests/it/helpers
# The commit built, for sdm_watch_build_info (the image's context has no .git):
#   podman build --build-arg SDM_WATCH_REVISION=$(git rev-parse --short=12 HEAD) .
ARG SDM_WATCH_REVISION=unknown
ENV SDM_WATCH_REVISION=${SDM_WATCH_REVISION}
RUN cargo build --release --locked --bin sdm-watch

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/sdm-watch --shell /usr/sbin/nologin sdm-watch \
 && install -d -o sdm-watch -g sdm-watch -m 0700 /var/lib/sdm-watch
COPY --from=build /src/target/release/sdm-watch /usr/local/bin/sdm-watch
COPY deploy/config.container.toml /etc/sdm-watch/config.toml
USER 10001:10001
VOLUME ["/var/lib/sdm-watch"]
EXPOSE 10187
ENV SDM_WATCH_CONFIG=/etc/sdm-watch/config.toml
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["sdm-watch", "healthcheck"]
ENTRYPOINT ["sdm-watch"]
CMD ["run"]
