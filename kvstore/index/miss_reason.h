// Why a block was not served: every miss the daemon counts has one reason,
// and `kvctl why` names it per block.
#ifndef KVCACHE_KVSTORE_INDEX_MISS_REASON_H_
#define KVCACHE_KVSTORE_INDEX_MISS_REASON_H_

#include <cstddef>
#include <cstdint>

namespace kvcache {

enum class MissReason : uint8_t {
  // No record of the key: never put, or dropped longer ago than the drop
  // record reaches back (kvstored --drop_record_entries).
  kNeverStored,
  // Dropped, least recently used, to make room for other blocks.
  kEvictedPressure,
  // Dropped by an operator (kvctl evict, or the Evict RPC).
  kEvictedOperator,
  // A copy failed verification (an NVMe record, a GPU copy) and was dropped.
  kIntegrity,
  // Refused or dropped because its parent was not cached: a put that came
  // after the parent's eviction, or a child of a block dropped for integrity.
  kParentMissing,
  // Its only copy is on a tier that is disabled or failing (I/O errors).
  kTierDisabled,
  // No host pages could be had to read its NVMe or GPU copy into.
  kNoRoom,
  // The fetch's deadline passed before the block was read.
  kDeadline,
  kCount
};

inline constexpr size_t kMissReasons = static_cast<size_t>(MissReason::kCount);

// The label Stats and /metrics use: "never_stored", "evicted_pressure", ...
inline const char* MissReasonName(MissReason reason) {
  switch (reason) {
    case MissReason::kNeverStored:
      return "never_stored";
    case MissReason::kEvictedPressure:
      return "evicted_pressure";
    case MissReason::kEvictedOperator:
      return "evicted_operator";
    case MissReason::kIntegrity:
      return "integrity";
    case MissReason::kParentMissing:
      return "parent_missing";
    case MissReason::kTierDisabled:
      return "tier_disabled";
    case MissReason::kNoRoom:
      return "no_room";
    case MissReason::kDeadline:
      return "deadline";
    case MissReason::kCount:
      break;
  }
  return "unknown";
}

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_MISS_REASON_H_
