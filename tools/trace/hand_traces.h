// Small hand-made traces for tests, with answers worked out in the tests.
#ifndef KVCACHE_TOOLS_TRACE_HAND_TRACES_H_
#define KVCACHE_TOOLS_TRACE_HAND_TRACES_H_

#include <vector>

#include "tools/trace/trace.h"

namespace kvcache {

// One request per chain, a millisecond apart.
inline std::vector<TraceRequest> HandTrace(std::vector<std::vector<uint64_t>> chains) {
  std::vector<TraceRequest> trace;
  for (auto& c : chains) trace.push_back({static_cast<int64_t>(trace.size()), 0, 0, c});
  return trace;
}

// Five requests over six blocks: repeats, a branch, and a new conversation.
inline std::vector<TraceRequest> FiveRequests() {
  return HandTrace({{1, 2, 3}, {1, 2, 4}, {1, 2, 3}, {1, 5, 6}, {1, 2, 3}});
}

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_HAND_TRACES_H_
