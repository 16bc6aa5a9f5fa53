# switchboard daemon image (Debian 12).
#
#   docker build -t switchboard .
#   docker run --rm -p 8080:8080 -e SWITCHBOARD_API_TOKEN=... switchboard
#
# Mount your own configuration at /etc/switchboard/switchboard.json and a volume at
# /var/lib/switchboard to keep the data. Secrets come from the environment only.

# --- build ---------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build

# The packages the daemon needs (scripts/run's set: no broker, no test or style tools).
COPY scripts/setup /src/scripts/setup
RUN bash /src/scripts/setup --no-build --daemon && rm -rf /var/lib/apt/lists/*

COPY . /src
# A build dir outside /src, so that a build/ copied from a developer's tree cannot interfere.
RUN cmake -S /src -B /build -G "Unix Makefiles" \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=/usr/local \
      -DSWITCHBOARD_BUILD_TESTS=OFF \
      -DSWITCHBOARD_BUILD_BENCH=OFF \
 && cmake --build /build -j "$(nproc)" \
 && DESTDIR=/staging cmake --install /build --component runtime

# --- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim

# Shared libraries the binary and libswitchboard load (the runtime packages behind the -dev
# packages scripts/setup installs; libcpp-httplib0.11 brings libssl3 and libbrotli1). The ldd
# check below fails the build if one is missing.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcaf-core0.17 libboost-json1.81.0 libboost-url1.81.0 libspdlog1.10 libfmt9 \
      libcpp-httplib0.11 libbrotli1 zlib1g libsqlite3-0 librabbitmq4 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /staging/usr/local/ /usr/local/
COPY config/switchboard.json /etc/switchboard/switchboard.json

RUN ldconfig \
 && if ldd /usr/local/bin/switchboard | grep 'not found'; then exit 1; fi \
 && useradd --system --home-dir /var/lib/switchboard --shell /usr/sbin/nologin switchboard \
 && install -d -o switchboard -g switchboard /var/lib/switchboard \
 && /usr/local/bin/switchboard check-config /etc/switchboard/switchboard.json

USER switchboard
WORKDIR /var/lib/switchboard
VOLUME /var/lib/switchboard
EXPOSE 8080
# The image has no curl: the binary probes its own GET /health (exit 0 on 200, else 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/switchboard", "health", "--url", "http://127.0.0.1:8080/health"]
# switchboard drains and exits 0 on SIGTERM (docker stop).
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run", "--config", "/etc/switchboard/switchboard.json", \
     "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/switchboard"]
