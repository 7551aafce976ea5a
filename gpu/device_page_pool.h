// The GPU tier's memory: one device allocation made at start and cut into
// fixed-size pages, like the host arena (offload/host_arena.h). A block is a
// list of pages, so mixed block sizes never fragment it and nothing is
// allocated on the data path (cudaMalloc synchronizes the whole device).
//
// Built without CUDA, or with no usable GPU, Create returns Unavailable with
// the reason. CreateHostBacked cuts ordinary host memory the same way: the
// GPU tier's movement rules are tested with it where there is no GPU.
//
// Export lets another process on this host copy out of the pages (the
// same-host path's GPU leases): a CUDA IPC handle of the one allocation, or,
// for a host-backed pool, the memfd it lives in, sealed so a receiver can
// only map it read-only.
//
// Thread safety: all methods may be called from any thread. Page memory is
// not synchronized: whoever allocated a page owns its bytes until Free.
#ifndef KVCACHE_GPU_DEVICE_PAGE_POOL_H_
#define KVCACHE_GPU_DEVICE_PAGE_POOL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/mutex.h"

namespace kvcache {

class DevicePagePool {
 public:
  struct Options {
    int device = 0;
    uint64_t capacity_bytes = 1ull << 30;
    uint32_t page_bytes = 2u << 20;
  };

  // InvalidArgument for a page size that is not a power of two in
  // [64 KiB, 64 MiB] or a capacity below one page; Unavailable without
  // CUDA or that GPU; ResourceExhausted when the device has too little
  // free memory.
  static absl::StatusOr<std::unique_ptr<DevicePagePool>> Create(const Options& options);
  // The same pool in host memory (options.device is ignored): InvalidArgument
  // as above, ResourceExhausted if the memory cannot be had.
  static absl::StatusOr<std::unique_ptr<DevicePagePool>> CreateHostBacked(const Options& options);

  // How another process reaches the pool's pages.
  struct Share {
    std::string ipc_handle;  // a cudaIpcMemHandle_t's bytes; empty when host-backed
    std::string pci_bus_id;  // of the pool's GPU, as cudaDeviceGetPCIBusId
    int memfd = -1;          // host-backed only; owned by the pool
  };

  DevicePagePool(const DevicePagePool&) = delete;
  DevicePagePool& operator=(const DevicePagePool&) = delete;
  // REQUIRES: no copy into or out of the pool is still queued.
  ~DevicePagePool();

  // `count` free pages (not necessarily adjacent), all or nothing: false,
  // with `pages` untouched, when fewer are free.
  bool Allocate(uint32_t count, std::vector<uint32_t>* pages) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns pages to the pool. REQUIRES: each was allocated and not freed.
  void Free(absl::Span<const uint32_t> pages) ABSL_LOCKS_EXCLUDED(mu_);

  // Device address where page `page` starts. REQUIRES: page < page_count().
  uint8_t* PageData(uint32_t page) const { return base_ + uint64_t{page} * page_bytes_; }
  uint32_t PagesFor(uint64_t bytes) const;
  uint32_t page_bytes() const { return page_bytes_; }
  uint32_t page_count() const { return page_count_; }
  uint32_t free_pages() const ABSL_LOCKS_EXCLUDED(mu_);
  int device() const { return device_; }
  // True for a pool made by CreateHostBacked.
  bool host_backed() const { return host_backed_; }
  uint64_t bytes() const { return uint64_t{page_count_} * page_bytes_; }
  // UNAVAILABLE with CUDA's reason if the allocation cannot be shared, or if
  // a host-backed pool's memfd could not be sealed.
  absl::StatusOr<Share> Export() const;
  // One line for the banner and Stats: size, pages, device.
  const std::string& detail() const { return detail_; }

 private:
  DevicePagePool(uint8_t* base, bool host_backed, int device, uint32_t page_bytes,
                 uint32_t page_count, std::string detail, int memfd = -1, bool sealed = false);
  // The CUDA halves (device_page_pool_cuda.cc, or _none.cc without CUDA).
  void FreeDeviceMemory();
  absl::StatusOr<Share> ExportDeviceMemory() const;

  uint8_t* const base_;  // device memory, or host memory when host_backed_
  const bool host_backed_;
  const int memfd_;  // host-backed: the memfd base_ maps
  const bool sealed_;
  const int device_;
  const uint32_t page_bytes_;
  const uint32_t page_count_;
  const std::string detail_;
  mutable Mutex mu_;
  std::vector<uint32_t> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_GPU_DEVICE_PAGE_POOL_H_
