// One local connection's staging area for puts (same-host path): a memfd the
// client maps writable and writes block payloads into, in ranges the daemon
// reserves per put lease. At commit the daemon copies a block from here into
// arena pages, hashing what it stored, so what the client changes afterwards
// cannot reach the cache. The arena itself stays read-only to clients.
//
// The memfd is sealed against resizing, so a client cannot shrink it under
// the daemon's mapping (a read past the end would kill the daemon with
// SIGBUS). Memory is taken only for the pages clients touch; first-fit
// reservation keeps reusing the lowest ones.
//
// Thread safety: none; one connection's thread owns it.
#ifndef KVCACHE_KVSTORE_STORE_STAGING_SPACE_H_
#define KVCACHE_KVSTORE_STORE_STAGING_SPACE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/range_allocator.h"

namespace kvcache {

class StagingSpace {
 public:
  // A reserved range; gives itself back when destroyed. Move-only.
  // REQUIRES: destroyed before its StagingSpace.
  class Range {
   public:
    Range() = default;
    Range(Range&& other) noexcept;
    Range& operator=(Range&& other) noexcept;
    ~Range();

    uint64_t offset() const { return offset_; }
    uint64_t length() const { return length_; }
    // The bytes as the client left them (it may still be writing).
    absl::Span<const uint8_t> bytes() const;

   private:
    friend class StagingSpace;
    Range(StagingSpace* space, uint64_t offset, uint64_t length)
        : space_(space), offset_(offset), length_(length) {}
    void Release();

    StagingSpace* space_ = nullptr;
    uint64_t offset_ = 0;
    uint64_t length_ = 0;
  };

  // A sealed memfd of `bytes` (rounded up to 4 KiB), mapped here.
  // INVALID_ARGUMENT for 0; RESOURCE_EXHAUSTED if it cannot be made.
  static absl::StatusOr<std::unique_ptr<StagingSpace>> Create(uint64_t bytes);
  ~StagingSpace();
  StagingSpace(const StagingSpace&) = delete;
  StagingSpace& operator=(const StagingSpace&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  uint64_t reserved_bytes() const { return ranges_.used_bytes(); }

  // The lowest free range of `length` bytes (1 or more). RESOURCE_EXHAUSTED
  // when none is free.
  absl::StatusOr<Range> Reserve(uint64_t length);
  // The bytes at [offset, offset + length) as the client left them (it may
  // still be writing), reserved or not; INVALID_ARGUMENT outside the space.
  absl::StatusOr<absl::Span<const uint8_t>> Bytes(uint64_t offset, uint64_t length) const;

 private:
  StagingSpace(int fd, uint8_t* base, uint64_t size);
  void Free(uint64_t offset, uint64_t length);

  const int fd_;
  uint8_t* const base_;
  const uint64_t size_;
  RangeAllocator ranges_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_STAGING_SPACE_H_
