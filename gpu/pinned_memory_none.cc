#include "gpu/pinned_memory.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<PinnedRegistration>> PinnedRegistration::Create(void* base,
                                                                               uint64_t bytes) {
  if (base == nullptr || bytes == 0) return absl::InvalidArgumentError("nothing to pin");
  return absl::UnavailableError("built without CUDA");
}
PinnedRegistration::~PinnedRegistration() = default;

absl::StatusOr<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Create(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("empty pinned buffer");
  return absl::UnavailableError("built without CUDA");
}
PinnedBuffer::~PinnedBuffer() = default;

bool IsPinned(const void*) { return false; }

}  // namespace kvcache
