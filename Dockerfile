# Larder in a container (docs/operations.md, "The container image"). Two stages on Debian 12:
# the builder compiles a Release `larder` and makes the Debian package (cpack, the same as
# `make package-check`); the runtime image installs that package, so apt brings exactly the
# shared libraries the binary links (the package's Depends:) and nothing to build with.
#
#   docker build -t larder .
#   docker run -d -p 8443:8443 -v /srv/larder/etc:/etc/larder:ro -v larder-audit:/var/log/larder larder

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates file \
      libssl-dev libsodium-dev libprotobuf-dev protobuf-compiler libre2-dev \
      libboost-dev libboost-system-dev nlohmann-json3-dev libvalijson-dev libtomlplusplus-dev \
      libcli11-dev libspdlog-dev libpq-dev libpg-query-dev libcurl4-openssl-dev libedit-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The program only: no tests, no benchmarks. The prefix /usr gives the package's paths.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release '-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG' \
      '-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG' -DLARDER_TESTS=OFF -DLARDER_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr \
 && cmake --build /build --target larder \
 && cd /build && cpack -G DEB -B /packages \
 && mv /packages/larder_*.deb /packages/larder.deb

FROM debian:12-slim
# The user first, with a fixed uid for volume ownership; the package's postinst keeps it.
RUN groupadd --system --gid 10001 larder \
 && useradd --system --uid 10001 --gid larder --home-dir /var/lib/larder --no-create-home \
      --shell /usr/sbin/nologin larder
COPY --from=build /packages/larder.deb /tmp/larder.deb
# curl: the HEALTHCHECK's client.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/larder.deb ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /tmp/larder.deb \
 && install -d -o larder -g larder -m 0750 /var/lib/larder /var/log/larder
USER larder
WORKDIR /var/lib/larder
# /etc/larder: mount your configuration, TLS files and policy file there (read-only);
# /var/log/larder: the audit logs, kept on a volume.
VOLUME ["/var/log/larder"]
EXPOSE 8443 8444
# The loopback admin listener ([admin] port = 9464 in larder.toml) answers /healthz; it is
# reached from inside the container only. A configuration without [admin] leaves the
# container "unhealthy" but running.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["/usr/bin/larder"]
CMD ["serve", "--config", "/etc/larder/larder.toml"]
