#!/usr/bin/env bash
# Installs what kvcache needs from Debian 12's packages, only what is missing.
# Idempotent: a second run installs nothing. Needs root (or sudo).
set -euo pipefail

packages=(
  bazel-bootstrap          # Bazel 4.2.3, runs offline with third_party/bazel shims
  g++ pkg-config
  protobuf-compiler libprotobuf-dev
  protobuf-compiler-grpc libgrpc++-dev
  libabsl-dev librocksdb-dev liburing-dev libssl-dev libxxhash-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev
  python3                  # regenerates the key test vectors
  python3-dev pybind11-dev # the Python binding of the client (client/python)
  python3-numpy python3-torch  # the reference engine (tools/engine)
  python3-pytest           # the Python tests
  python3-grpcio           # the hostile-client tests speak raw gRPC from Python
  python3-xxhash           # ... and checksum the blocks they put by hand
  openssl                  # the security tests make their certificates with it
  libopenblas0-pthread     # torch's BLAS: without it prefill is ~40x slower
  redis-server             # the reference kvbench measures against
  gnuplot-nox              # kvbench trace --out draws its plots
  fio                      # kvbench nvme measures the NVMe tier against it
  etcd-server              # cluster membership; the cluster tests start their own
  clang-14 libclang-rt-14-dev  # the fuzzers (tools/fuzz) and the thread-safety check
  libcivetweb-dev          # kvstored's /metrics endpoint (libc only: the GPU kit stays small)
  prometheus python3-prometheus-client  # the metrics tests scrape and parse it
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
