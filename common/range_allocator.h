// First-fit allocation of aligned ranges in [0, capacity): a connection's
// staging space today, NVMe extents next. Lowest offsets first, so reuse
// stays in the pages already touched; freed neighbours merge.
//
// Thread safety: none; the owner serializes calls.
#ifndef KVCACHE_COMMON_RANGE_ALLOCATOR_H_
#define KVCACHE_COMMON_RANGE_ALLOCATOR_H_

#include <cstdint>
#include <map>

#include "absl/status/statusor.h"

namespace kvcache {

class RangeAllocator {
 public:
  // REQUIRES: align is a power of two; capacity is a multiple of it.
  RangeAllocator(uint64_t capacity, uint64_t align);

  uint64_t capacity() const { return capacity_; }
  uint64_t used_bytes() const { return used_; }
  // `length` rounded up to the alignment: what a range of it occupies.
  uint64_t Rounded(uint64_t length) const { return (length + align_ - 1) / align_ * align_; }

  // The lowest free range for `length` bytes (1 or more); returns its offset.
  // INVALID_ARGUMENT if it could never fit, RESOURCE_EXHAUSTED if none is
  // free now.
  absl::StatusOr<uint64_t> Allocate(uint64_t length);
  // Gives back a range Allocate returned (same length).
  void Free(uint64_t offset, uint64_t length);
  // Marks [offset, offset + length) used, as found on disk at start.
  // FAILED_PRECONDITION if any of it is already used or out of range.
  absl::Status MarkUsed(uint64_t offset, uint64_t length);

 private:
  const uint64_t capacity_;
  const uint64_t align_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_;  // offset -> length, never adjacent
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_RANGE_ALLOCATOR_H_
