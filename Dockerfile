# Weir's servers and CLI in a slim Debian image (docs/deployment.md). Debian packages only.
#   docker build -t weir:0.1 .
#   docker run --rm weir:0.1 weir --help
# Build stage: the project's own install script (Debian packages), then a Release build of
# the servers and the CLI only.
FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN bash deploy/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build && \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWEIR_BUILD_TESTS=OFF -DWEIR_BUILD_BENCH=OFF && \
    cmake --build build -j"$(nproc)" --target weir-jobmanager weir-taskmanager weir && \
    cmake --install build --prefix /opt/weir --strip

# Runtime stage: the shared libraries the binaries link (tests/deploy/packaging_test.py checks
# this list against ldd of a fresh build) and the web UI's JavaScript libraries.
FROM debian:bookworm-slim
RUN apt-get update && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libc-ares2 libcivetweb1 libfmt9 libgflags2.2 libgrpc++1.51 libgrpc29 \
      liblz4-1 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libprotobuf32 librdkafka1 \
      libre2-9 libsasl2-2 libsimdjson14 libsnappy1v5 libspdlog1.10 libssl3 \
      libthrift-0.17.0 libyaml-cpp0.7 \
      libzstd1 libjs-d3 libjs-chart.js openssl && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --system --uid 10001 --home-dir /var/lib/weir --create-home weir && \
    mkdir -p /etc/weir /var/lib/weir/state /var/lib/weir/checkpoints && \
    chown -R weir /var/lib/weir
COPY --from=build /opt/weir /opt/weir
COPY deploy/weir.yaml /etc/weir/weir.yaml
ENV PATH=/opt/weir/bin:$PATH
USER weir
WORKDIR /var/lib/weir
# 6123 job manager gRPC, 8081 REST and web UI, 6122 task manager gRPC, 6121 data plane,
# 9249 task manager /metrics.
EXPOSE 6123 8081 6122 6121 9249
CMD ["weir-jobmanager", "--config", "/etc/weir/weir.yaml", "--web-dir", "/opt/weir/share/weir/ui"]
