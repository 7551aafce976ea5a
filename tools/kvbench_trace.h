// `kvbench trace`: replays a production trace through the real client and
// daemon at a sweep of capacities, next to offline LRU and Belady on the same
// trace, and reports hit ratios and service figures (see kvbench_trace.cc).
#ifndef KVCACHE_TOOLS_KVBENCH_TRACE_H_
#define KVCACHE_TOOLS_KVBENCH_TRACE_H_

#include <string>

namespace kvcache {

// Returns the process exit status. `kvstored` is the daemon binary.
int RunTraceBench(const std::string& kvstored, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_TRACE_H_
