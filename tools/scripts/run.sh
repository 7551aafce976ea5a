#!/usr/bin/env bash
# Installs what is missing, builds, and runs kvstored in the foreground with
# its embedded defaults (1 GiB host tier on 127.0.0.1:50051). Extra arguments
# go to kvstored (see `kvstored --help`).
set -euo pipefail
cd "$(dirname "$0")/../.."

tools/scripts/install_deps.sh
bazel build --config=opt //kvstore:kvstored //tools:kvctl //tools/engine:demo
echo "kvctl is at $(pwd)/bazel-bin/tools/kvctl"
exec bazel-bin/kvstore/kvstored "$@"
