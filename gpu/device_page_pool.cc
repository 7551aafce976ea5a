#include "gpu/device_page_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/memfd_seal.h"
#include "gpu/device_page_pool_options.h"

namespace kvcache {

DevicePagePool::DevicePagePool(uint8_t* base, bool host_backed, int device, uint32_t page_bytes,
                               uint32_t page_count, std::string detail, int memfd, bool sealed)
    : base_(base),
      host_backed_(host_backed),
      memfd_(memfd),
      sealed_(sealed),
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
  // In a memfd, so the same-host path can share it as it would a GPU pool.
  const int fd = memfd_create("kvcache-gpu-pool-in-host-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void* base = MAP_FAILED;
  if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
    base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (base == MAP_FAILED) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot allocate a %d-byte host-backed page pool: %s", bytes, std::strerror(err)));
  }
  const bool sealed = SealAgainstOtherWriters(fd);
  std::string detail =
      absl::StrFormat("%.1f GiB in %d pages of %d KiB in host memory (no GPU)",
                      bytes / double(1ull << 30), *pages, options.page_bytes >> 10);
  return std::unique_ptr<DevicePagePool>(
      new DevicePagePool(static_cast<uint8_t*>(base), /*host_backed=*/true, -1, options.page_bytes,
                         *pages, std::move(detail), fd, sealed));
}

DevicePagePool::~DevicePagePool() {
  if (!host_backed_) {
    FreeDeviceMemory();
    return;
  }
  munmap(base_, bytes());
  close(memfd_);
}

absl::StatusOr<DevicePagePool::Share> DevicePagePool::Export() const {
  if (!host_backed_) return ExportDeviceMemory();
  if (!sealed_) {
    return absl::UnavailableError(
        "the host-backed pool's memfd is not sealed (Linux 5.1 or later), so it cannot be shared "
        "read-only");
  }
  Share share;
  share.memfd = memfd_;
  return share;
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
