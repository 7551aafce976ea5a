#include "gpu/device_page_pool.h"

#include <algorithm>

namespace kvcache {

DevicePagePool::DevicePagePool(uint8_t* base, int device, uint32_t page_bytes, uint32_t page_count,
                               std::string detail)
    : base_(base),
      device_(device),
      page_bytes_(page_bytes),
      page_count_(page_count),
      detail_(std::move(detail)) {
  free_.resize(page_count);
  for (uint32_t i = 0; i < page_count; ++i) free_[i] = page_count - 1 - i;  // low pages first
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
