#include "client/staging_plan.h"

#include <algorithm>

namespace kvcache {

std::vector<std::vector<StagedPiece>> PlanStagingRounds(absl::Span<const uint64_t> item_bytes,
                                                        uint64_t slot_bytes) {
  std::vector<std::vector<StagedPiece>> rounds(1);
  uint64_t used = 0;
  for (size_t item = 0; item < item_bytes.size(); ++item) {
    uint64_t offset = 0;
    // An item that fits a slot moves whole (so the socket paths can verify
    // its checksum): if it does not fit what is left, it starts a round.
    if (item_bytes[item] <= slot_bytes && used + item_bytes[item] > slot_bytes) {
      rounds.emplace_back();
      used = 0;
    }
    do {
      if (used == slot_bytes) {
        rounds.emplace_back();
        used = 0;
      }
      const uint64_t n = std::min(item_bytes[item] - offset, slot_bytes - used);
      rounds.back().push_back({item, offset, n, used, offset + n == item_bytes[item]});
      used += n;
      offset += n;
    } while (offset < item_bytes[item]);
  }
  if (rounds.back().empty()) rounds.pop_back();
  return rounds;
}

}  // namespace kvcache
