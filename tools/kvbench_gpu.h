// `kvbench gpu`: the copy engine's upload (H2D) and download (D2H) rates for
// 2 MiB blocks and for batches of 32 KiB fragments, next to one plain
// cudaMemcpyAsync of a large pinned buffer (the bus's practical peak) in
// alternating rounds of one run on the same GPU.
#ifndef KVCACHE_TOOLS_KVBENCH_GPU_H_
#define KVCACHE_TOOLS_KVBENCH_GPU_H_

namespace kvcache {

// Returns the process exit status: 0 measured, 1 no GPU here (said why on
// stderr), 2 bad flags. `runs` rounds; figures are medians.
int RunGpuBench(int runs, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_GPU_H_
