// `kvbench cluster`'s failure replay: the conversation trace through a
// cluster whose daemons register in a fresh etcd and repair their copies,
// with one node killed halfway (tools/kvbench_cluster.cc prints the table).
#ifndef KVCACHE_TOOLS_KVBENCH_FAILURE_H_
#define KVCACHE_TOOLS_KVBENCH_FAILURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "key/block_key.h"
#include "tools/trace/trace.h"
#include "tools/trace/trace_replay.h"

namespace kvcache {

// One replay of the trace through `nodes` daemons of `blocks_per_node` pages
// each, registered in a fresh etcd, every block on `replicas` of them: the
// first half, then the third quarter and the last quarter. With `kill`,
// node 1 is killed with -9 after the first half, and the last quarter starts
// once the survivors' repair has finished.
struct FailureRun {
  ReplayResult down;    // third quarter: healthy, or one node down
  ReplayResult after;   // last quarter: healthy, or after repair
  uint64_t held_bytes = 0;  // on every node still up, at the end
};

absl::StatusOr<FailureRun> ReplayThroughAFailure(
    const std::string& kvstored, int nodes, uint64_t blocks_per_node, uint64_t payload,
    const std::vector<TraceRequest>& trace, const std::vector<std::vector<BlockKey>>& keys,
    int replicas, bool kill);

// Runs ReplayThroughAFailure with 1 and 2 replicas, each healthy and with a
// node killed, at `percent` of the trace's distinct blocks
// (`blocks_per_node` pages a node), and appends a markdown table to *table
// and `"failure_<percent>": {...}` to *json (comma-separated).
absl::Status AppendFailureReplay(const std::string& kvstored, int nodes, uint64_t blocks_per_node,
                                 double percent, uint64_t payload,
                                 const std::vector<TraceRequest>& trace,
                                 const std::vector<std::vector<BlockKey>>& keys,
                                 std::string* table, std::string* json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_FAILURE_H_
