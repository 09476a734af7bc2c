#!/usr/bin/env bash
# Installs Weir's build and test dependencies from Debian's packages (nothing else is downloaded).
# Skips apt entirely when every package is already present, so repeated runs are quick.
#   deploy/install-deps.sh            the product's build and test dependencies
#   deploy/install-deps.sh --browser  also the real-browser test's (tests/browser): chromium, nodejs, npm
#   deploy/install-deps.sh --node     also nodejs and npm (tests/parquet reads Parquet with DuckDB)
set -euo pipefail
PKGS=(cmake g++ make pkg-config ccache zlib1g-dev
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      librocksdb-dev librdkafka-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
      libgtest-dev libgmock-dev libbenchmark-dev python3 curl procps libssl-dev openssl
      prometheus-cpp-dev libcivetweb-dev libjs-d3 libjs-chart.js
      libsimdjson-dev libre2-dev
      thrift-compiler libthrift-dev libboost-dev libsnappy-dev libzstd-dev  # format: parquet
      rapidjson-dev  # header-only: the JSON lines writer (connectors/src/json_format.cc)
      python3-yaml systemd)  # the last two: tests/unit/check_packaging.py
# Test-only: never needed to build or run Weir.
if [ "${1:-}" = "--browser" ] || [ "${1:-}" = "--node" ]; then
  if [ "${1:-}" = "--browser" ]; then PKGS+=(chromium); fi
  # Node.js and npm from Debian unless some node is already there (e.g. with its own npm).
  command -v node >/dev/null || PKGS+=(nodejs)
  command -v npm >/dev/null || PKGS+=(npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
