// Host memory the GPU reads and writes by DMA ("pinned"), so copies to and
// from it are asynchronous and run at the bus's speed; pageable memory copies
// 3-5x slower and blocks the caller. Pinning is slow (the kernel walks and
// locks every page), so it happens once, at start: the daemon pins its host
// arena, a client its staging buffer. Never on the data path.
//
// Built without CUDA, or with no usable GPU, both factories return
// Unavailable with the reason.
//
// Thread safety: immutable after creation.
#ifndef KVCACHE_GPU_PINNED_MEMORY_H_
#define KVCACHE_GPU_PINNED_MEMORY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace kvcache {

// Pins memory someone else mapped (the host arena) for as long as it lives.
class PinnedRegistration {
 public:
  // Pins [base, base + bytes) for every CUDA context of this process. The
  // mapping must outlive the registration. InvalidArgument for an empty
  // range; Unavailable without a GPU; Internal when CUDA refuses.
  static absl::StatusOr<std::unique_ptr<PinnedRegistration>> Create(void* base, uint64_t bytes);

  PinnedRegistration(const PinnedRegistration&) = delete;
  PinnedRegistration& operator=(const PinnedRegistration&) = delete;
  ~PinnedRegistration();  // unpins

  void* base() const { return base_; }
  uint64_t bytes() const { return bytes_; }

 private:
  PinnedRegistration(void* base, uint64_t bytes) : base_(base), bytes_(bytes) {}
  void* const base_;
  const uint64_t bytes_;
};

// Pinned memory allocated for the purpose (a client's staging buffer).
class PinnedBuffer {
 public:
  static absl::StatusOr<std::unique_ptr<PinnedBuffer>> Create(uint64_t bytes);

  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();  // frees; REQUIRES: no copy from or to it is still queued

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  PinnedBuffer(uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  uint8_t* const data_;
  const uint64_t size_;
};

// True if `address` lies in memory this process pinned (registered or
// allocated through CUDA). False without CUDA.
bool IsPinned(const void* address);

}  // namespace kvcache

#endif  // KVCACHE_GPU_PINNED_MEMORY_H_
