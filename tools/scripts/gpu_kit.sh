#!/usr/bin/env bash
# Builds every GPU test, kvstored, kvctl and kvbench with CUDA (--config=opt)
# and packs them with every shared library they load into one folder that
# runs on a GPU machine with nothing installed but the NVIDIA driver
# (tools/gpu_kit/make_kit.sh), with the reference engine and the client's C
# ABI for that machine's own Python and torch. Then, there: KIT/run.sh.
#
# Usage: tools/scripts/gpu_kit.sh [KIT]   (default: gpu_kit/, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=${1:-gpu_kit}
# Tests tagged exactly `gpu` (not gpu_kit, whose test packs a kit itself).
tests=$(bazel query 'attr(tags, "[\[ ]gpu[,\]]", tests(//...))' 2>/dev/null)
bazel build --config=opt //kvstore:kvstored //tools:kvctl //tools:kvbench \
    //client/c_api:libkvcache_c.so $tests
specs=(kvstore/kvstored=bazel-bin/kvstore/kvstored tools/kvctl=bazel-bin/tools/kvctl
       tools/kvbench=bazel-bin/tools/kvbench
       # The engine runs with the GPU machine's own Python and torch, the
       # client through its C ABI (client/python/kvcache/_portable.py).
       lib:python/kvcache/libkvcache_c.so=bazel-bin/client/c_api/libkvcache_c.so)
for f in kvcache/__init__.py kvcache/_portable.py kvcache_testing.py; do
  specs+=("file:python/$f=client/python/$f")
done
for f in bench.py connector.py engine.py engine_test.py model.py paged_cache.py; do
  specs+=("file:engine/$f=tools/engine/$f")
done
for label in $tests; do
  path=${label#//}
  path=${path/://}
  specs+=("$path=bazel-bin/$path")
done
tools/gpu_kit/make_kit.sh "$kit" "${specs[@]}"
bytes=$(du -sb "$kit" | cut -f1)
if ((bytes > 64 << 20)); then
  echo "gpu_kit: $kit is $((bytes >> 20)) MiB, over the 64 MiB a device call may carry" >&2
  exit 1
fi
echo "gpu_kit: on the GPU machine run $kit/run.sh (results under \$OUT)"
