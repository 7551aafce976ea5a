// A cached block's copy in GPU pages (the GPU tier's DeviceMemory), and the
// copies that move a block between those pages and host arena pages.
//
// The index holds a DeviceBlock by shared_ptr, as it holds a CachedBlock:
// whoever copies out of it (a demotion, a read, a same-host worker's lease)
// holds it too, so its pages go back to the pool only when the last hold
// is gone, never while a copy may still read them.
//
// Thread safety: immutable after construction.
#ifndef KVCACHE_KVSTORE_INDEX_DEVICE_BLOCK_H_
#define KVCACHE_KVSTORE_INDEX_DEVICE_BLOCK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "gpu/copy_batch.h"
#include "gpu/device_memory.h"
#include "offload/host_arena.h"

namespace kvcache {

class DeviceBlock {
 public:
  // Pages for a block of `size` bytes whose XXH3 is `checksum` (what the
  // pages are to hold, checked on every copy down), or null when the pool
  // has too few free pages. `memory` is not owned and outlives the block.
  static std::unique_ptr<DeviceBlock> Allocate(DeviceMemory& memory, uint64_t size,
                                               uint64_t checksum);
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() { memory_.pool().Free(pages_); }

  uint64_t size() const { return size_; }
  uint64_t checksum() const { return checksum_; }
  const std::vector<uint32_t>& pages() const { return pages_; }

  // The copies that move the whole block from `host` into these pages
  // (UploadOps) or back (DownloadOps), piece by piece where host and
  // device page boundaries fall. REQUIRES: host.size() == size().
  std::vector<CopyOp> UploadOps(const PageRun& host) const;
  std::vector<CopyOp> DownloadOps(PageRun& host) const;

  // Where in the pool [offset, offset + length) of the block lies: byte
  // ranges from the pool's start (as another process that opened the pool
  // sees it), adjacent pages merged. REQUIRES: offset + length <= size().
  struct PoolRange {
    uint64_t offset;
    uint64_t length;
  };
  std::vector<PoolRange> PoolRanges(uint64_t offset, uint64_t length) const;

 private:
  DeviceBlock(DeviceMemory& memory, std::vector<uint32_t> pages, uint64_t size, uint64_t checksum)
      : memory_(memory), pages_(std::move(pages)), size_(size), checksum_(checksum) {}
  // Calls fn(device address, host address, bytes) over the whole block.
  template <typename Fn>
  void ForEachPiece(const PageRun& host, Fn fn) const;

  DeviceMemory& memory_;
  const std::vector<uint32_t> pages_;
  const uint64_t size_;
  const uint64_t checksum_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_DEVICE_BLOCK_H_
