#include "common/range_allocator.h"

#include <iterator>

#include "absl/strings/str_cat.h"

namespace kvcache {

RangeAllocator::RangeAllocator(uint64_t capacity, uint64_t align)
    : capacity_(capacity), align_(align) {
  if (capacity > 0) free_[0] = capacity;
}

absl::StatusOr<uint64_t> RangeAllocator::Allocate(uint64_t length) {
  const uint64_t need = Rounded(length);
  if (length == 0 || need > capacity_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a range of ", length, " bytes cannot fit in ", capacity_));
  }
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const uint64_t offset = it->first;
    const uint64_t left = it->second - need;
    free_.erase(it);
    if (left > 0) free_[offset + need] = left;
    used_ += need;
    return offset;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("no free range of ", need, " bytes (", used_, " of ", capacity_, " used)"));
}

void RangeAllocator::Free(uint64_t offset, uint64_t length) {
  length = Rounded(length);
  used_ -= length;
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + length == next->first) {  // merge with the one after
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {  // merge into the one before
      prev->second += length;
      return;
    }
  }
  free_[offset] = length;
}

absl::Status RangeAllocator::MarkUsed(uint64_t offset, uint64_t length) {
  length = Rounded(length);
  if (length == 0 || offset % align_ != 0) {
    return absl::FailedPreconditionError("range is empty or not aligned");
  }
  auto it = free_.upper_bound(offset);
  if (it == free_.begin()) return absl::FailedPreconditionError("range is not free");
  --it;  // the free range that starts at or before offset
  const uint64_t start = it->first, end = it->first + it->second;
  if (offset + length > end) {
    return absl::FailedPreconditionError(
        absl::StrCat("range at ", offset, " of ", length, " bytes is not free"));
  }
  free_.erase(it);
  if (offset > start) free_[start] = offset - start;
  if (offset + length < end) free_[offset + length] = end - offset - length;
  used_ += length;
  return absl::OkStatus();
}

}  // namespace kvcache
