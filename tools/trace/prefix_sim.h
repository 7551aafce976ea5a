// Offline references for a trace's prefix hit ratio: plain LRU over blocks
// and Belady's rule, counted the way the replay counts the daemon.
//
// Counting: for each request, its hits are the leading run of its chain
// found in the cache before the request changes it; a block after the first
// miss does not count even if cached. The ratio is hits over all prompt
// blocks. Then every block of the request is accessed in chain order: a
// cached one is touched, a missing one is inserted (evicting if full).
#ifndef KVCACHE_TOOLS_TRACE_PREFIX_SIM_H_
#define KVCACHE_TOOLS_TRACE_PREFIX_SIM_H_

#include <cstdint>
#include <vector>

#include "tools/trace/trace.h"

namespace kvcache {

struct HitCount {
  uint64_t prompt_blocks = 0;
  uint64_t hit_blocks = 0;
  double ratio() const { return prompt_blocks == 0 ? 0 : double(hit_blocks) / prompt_blocks; }
};

// Least recently used block goes first. capacity_blocks >= 1.
HitCount SimulateLru(const std::vector<TraceRequest>& trace, uint64_t capacity_blocks);

// When a block must come in and the cache is full, the block (cached or
// incoming) whose next use is farthest away is left out: the optimum for
// block hits with this knowledge of the future. capacity_blocks >= 1.
HitCount SimulateBelady(const std::vector<TraceRequest>& trace, uint64_t capacity_blocks);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_PREFIX_SIM_H_
