#!/usr/bin/env bash
# Installs Weir's build and test dependencies from Debian's packages (nothing else is downloaded).
# Skips apt entirely when every package is already present, so repeated runs are quick.
set -euo pipefail
PKGS=(cmake g++ make pkg-config ccache zlib1g-dev
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      librocksdb-dev librdkafka-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
      libgtest-dev libgmock-dev libbenchmark-dev python3 curl procps
      prometheus-cpp-dev libcivetweb-dev libjs-d3 libjs-chart.js)
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
