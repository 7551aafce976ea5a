#include "gpu/device_page_pool.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "gpu/device_page_pool_options.h"

namespace kvcache {

DevicePagePool::DevicePagePool(uint8_t* base, bool host_backed, int device, uint32_t page_bytes,
                               uint32_t page_count, std::string detail)
    : base_(base),
      host_backed_(host_backed),
      device_(device),
      page_bytes_(page_bytes),
      page_count_(page_count),
      detail_(std::move(detail)) {
  free_.resize(page_count);
  for (uint32_t i = 0; i < page_count; ++i) free_[i] = page_count - 1 - i;  // low pages first
}

absl::StatusOr<std::unique_ptr<DevicePagePool>> DevicePagePool::CreateHostBacked(
    const Options& options) {
  absl::StatusOr<uint32_t> pages = CheckDevicePoolOptions(options);
  if (!pages.ok()) return pages.status();
  const uint64_t bytes = uint64_t{*pages} * options.page_bytes;
  void* base = std::aligned_alloc(4096, bytes);
  if (base == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate a %d-byte host-backed page pool", bytes));
  }
  std::string detail =
      absl::StrFormat("%.1f GiB in %d pages of %d KiB in host memory (no GPU)",
                      bytes / double(1ull << 30), *pages, options.page_bytes >> 10);
  return std::unique_ptr<DevicePagePool>(
      new DevicePagePool(static_cast<uint8_t*>(base), /*host_backed=*/true, -1, options.page_bytes,
                         *pages, std::move(detail)));
}

bool DevicePagePool::Allocate(uint32_t count, std::vector<uint32_t>* pages) {
  MutexLock lock(&mu_);
  if (count > free_.size()) return false;
  pages->insert(pages->end(), free_.end() - count, free_.end());
  free_.resize(free_.size() - count);
  return true;
}

void DevicePagePool::Free(absl::Span<const uint32_t> pages) {
  MutexLock lock(&mu_);
  free_.insert(free_.end(), pages.begin(), pages.end());
}

uint32_t DevicePagePool::PagesFor(uint64_t bytes) const {
  return static_cast<uint32_t>(std::max<uint64_t>(1, (bytes + page_bytes_ - 1) / page_bytes_));
}

uint32_t DevicePagePool::free_pages() const {
  MutexLock lock(&mu_);
  return static_cast<uint32_t>(free_.size());
}

}  // namespace kvcache
