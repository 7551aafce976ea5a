// Where a cluster's placement puts a trace's blocks, without daemons: per
// block (ClusterClient's placement: each block by its own key) or by
// segments (every `segment_blocks` consecutive blocks of a chain by the key
// of the segment's first block, so a chain touches fewer nodes). Capacity is
// unbounded: a block is a hit once any earlier request stored it, so the
// figures show what placement alone costs, not eviction.
//
// It answers the question docs/DESIGN.md records: does segment placement
// pay? Fewer nodes per call is its gain; lumpier bytes and a hotter node are
// its cost; and the failure cost (how much of each cached prefix survives a
// node's death before repair) is where either could win.
#ifndef KVCACHE_TOOLS_TRACE_PLACEMENT_STUDY_H_
#define KVCACHE_TOOLS_TRACE_PLACEMENT_STUDY_H_

#include <cstdint>
#include <vector>

#include "key/block_key.h"

namespace kvcache {

struct PlacementFigures {
  // Nodes a request's lookup calls (its chain's blocks' first replicas, the
  // root's chosen replica included), averaged over requests.
  double nodes_per_request = 0;
  // Copies stored on the fullest node over the mean (1.0 is even).
  double largest_over_mean_copies = 0;
  // The busiest node's share of the blocks read as hits.
  double hottest_read_share = 0;
  // Of the blocks that were hits (each request's cached prefix), the share
  // still a hit in the very next call after one node dies (it is marked
  // down; reads fail over to live replicas), averaged over which node dies.
  double kept_one_down = 0;
};

// `chains[r]` is request r's block keys, in trace order. `nodes` >= 1,
// `segment_blocks` >= 1 (1 is per-block placement), `replicas` >= 1. A
// chain's first block is on every node, as ClusterClient stores it, and is
// read from the replica its second key picks.
PlacementFigures StudyPlacement(const std::vector<std::vector<BlockKey>>& chains, int nodes,
                                int segment_blocks, int replicas);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_PLACEMENT_STUDY_H_
