// `kvbench gpu`: the copy engine's upload (H2D) and download (D2H) rates for
// 2 MiB blocks and for batches of 32 KiB fragments, next to one plain
// cudaMemcpyAsync of a large pinned buffer (the bus's practical peak) in
// alternating rounds of one run on the same GPU; then, end to end, a fetch of
// 2 MiB blocks from a kvstored on this host into GPU memory (GpuTransfer).
#ifndef KVCACHE_TOOLS_KVBENCH_GPU_H_
#define KVCACHE_TOOLS_KVBENCH_GPU_H_

#include <string>

namespace kvcache {

// Returns the process exit status: 0 measured, 1 no GPU here (said why on
// stderr), 2 bad flags. `runs` rounds; figures are medians. `kvstored` is
// the daemon binary for the end-to-end fetch.
int RunGpuBench(const std::string& kvstored, int runs, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_GPU_H_
