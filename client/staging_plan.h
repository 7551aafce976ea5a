// How a transfer through a fixed staging buffer is cut up: every item (a
// block, or a range of one) into pieces no bigger than a staging slot, and
// the pieces, in order, into rounds that each fit one slot. Plain
// arithmetic, shared by the GPU fetch and put paths (client/gpu_transfer.h).
#ifndef KVCACHE_CLIENT_STAGING_PLAN_H_
#define KVCACHE_CLIENT_STAGING_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace kvcache {

struct StagedPiece {
  size_t item = 0;      // index into the items
  uint64_t offset = 0;  // within the item
  uint64_t bytes = 0;
  uint64_t staging = 0;  // offset within the round's slot
  bool last = false;     // the item's final piece
};

// Rounds of pieces, in item order. Each round fits in `slot_bytes`. An item
// that fits a slot is one piece (it starts a new round if need be); only an
// item bigger than a slot is cut, filling rounds from where the last item
// ended. Empty items get one zero-byte piece so
// that they are still seen. REQUIRES: slot_bytes > 0.
std::vector<std::vector<StagedPiece>> PlanStagingRounds(absl::Span<const uint64_t> item_bytes,
                                                        uint64_t slot_bytes);

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_STAGING_PLAN_H_
