// Validation shared by both builds of DevicePagePool::Create.
#ifndef KVCACHE_GPU_DEVICE_PAGE_POOL_OPTIONS_H_
#define KVCACHE_GPU_DEVICE_PAGE_POOL_OPTIONS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gpu/device_page_pool.h"

namespace kvcache {

// The pool's page count, or InvalidArgument naming the bad option.
inline absl::StatusOr<uint32_t> CheckDevicePoolOptions(const DevicePagePool::Options& options) {
  const uint64_t page = options.page_bytes;
  if (page < (64u << 10) || page > (64u << 20) || (page & (page - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GPU page size ", page, " must be a power of two in [64 KiB, 64 MiB]"));
  }
  const uint64_t pages = options.capacity_bytes / page;
  if (pages == 0 || pages > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("GPU capacity ", options.capacity_bytes,
                                                   " must hold 1 to 2^32-1 pages of ", page));
  }
  return static_cast<uint32_t>(pages);
}

}  // namespace kvcache

#endif  // KVCACHE_GPU_DEVICE_PAGE_POOL_OPTIONS_H_
