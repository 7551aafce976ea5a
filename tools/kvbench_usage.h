// `kvbench --help`: every subcommand, its flags and what it measures.
#ifndef KVCACHE_TOOLS_KVBENCH_USAGE_H_
#define KVCACHE_TOOLS_KVBENCH_USAGE_H_

namespace kvcache {

inline constexpr char kKvbenchUsage[] =
    "kvbench: measures kvcache Put/Fetch/Lookup against raw TCP and Redis, side by side.\n"
    "  bazel build --config=opt //kvstore:kvstored //tools:kvbench\n"
    "  bazel-bin/tools/kvbench [--runs=5] [--seconds=1] [--only=samehost,socket,lookup] "
    "[--json]\n"
    "  bazel-bin/tools/kvbench trace [--trace=FILE] [--capacities=1,2,5,10,20,50,100] "
    "[--workers=8] [--speedup=0] [--payload=4KiB] [--out=DIR] [--update=FILE.md] [--json]\n"
    "    replays a production trace through the real client and daemon at each capacity,\n"
    "    next to offline LRU and Belady, with throughput and latency (see docs/BENCHMARKS.md)\n"
    "  bazel-bin/tools/kvbench nvme [--runs=5] [--nvme_bench_dir=/var/tmp/kvbench_nvme] "
    "[--nvme_bench_block=2MiB] [--nvme_bench_qd=8] [--json]\n"
    "    the NVMe tier's store writing and reading blocks next to fio on the same disk\n"
    "  bazel-bin/tools/kvbench gpu [--runs=5] [--gpu_bench_bytes=256MiB] [--gpu_device=0] "
    "[--json]\n"
    "    the copy engine's H2D/D2H rates (2 MiB blocks, batched 32 KiB fragments) next to one\n"
    "    plain cudaMemcpyAsync of a pinned buffer, and a fetch from kvstored into GPU memory;\n"
    "    needs a GPU\n"
    "  bazel-bin/tools/kvbench cluster [--nodes=4] [--cluster_capacities=10,100] "
    "[--cluster_failure_capacities=100,300] [--payload=4KiB] [--json]\n"
    "    the trace through N nodes as one tier (ClusterClient) and through one node of the\n"
    "    same total capacity: hit ratios, bytes held per node, fetched bytes per node; per-block\n"
    "    vs segment placement; a node killed halfway with 1 and 2 replicas, then repair;\n"
    "    lookup, put and fetch latency; aggregate fetch GB/s (--cluster_placement,\n"
    "    --cluster_failure, --cluster_latency, --cluster_throughput turn each off)\n"
    "  bazel-bin/tools/kvbench metrics [--runs=5] [--seconds=1] [--json]\n"
    "    what request metrics cost: remote lookups (1,024 keys; 64 with a miss) and fetches\n"
    "    (data port, same-host lease) against a daemon with metrics on and /metrics scraped\n"
    "    every second, and one with them off, side by side; medians and on/off ratios\n"
    "  bazel-bin/tools/kvbench tls [--runs=5] [--seconds=1] [--json]\n"
    "    what TLS costs: data-port Fetch of 2 MiB blocks inside TLS 1.3 (with a token) next to\n"
    "    the plaintext data port, gRPC over TLS and Redis GET over TLS (--tls-port), at 1 and\n"
    "    4 connections; certificates made with openssl\n"
  "  bazel-bin/tools/kvbench engine [--tokens=512,1024,2048,4096,8192] [--runs=3] "
    "[--out=DIR] [--binding_runs=5]\n"
    "    the reference engine's time to first token, cold (full prefill) against warm (its\n"
    "    prefix restored from kvstored) over the same-host path and the data port, and the\n"
    "    Python binding's fetches against the C++ client's (tools/engine/bench.py; its own\n"
    "    flags; --help there)";

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_USAGE_H_
