#include "gpu/device_page_pool.h"
#include "gpu/device_page_pool_options.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<DevicePagePool>> DevicePagePool::Create(const Options& options) {
  absl::StatusOr<uint32_t> pages = CheckDevicePoolOptions(options);
  if (!pages.ok()) return pages.status();
  return absl::UnavailableError("built without CUDA");
}

// Only host-backed pools exist here.
void DevicePagePool::FreeDeviceMemory() {}

absl::StatusOr<DevicePagePool::Share> DevicePagePool::ExportDeviceMemory() const {
  return absl::UnavailableError("built without CUDA");
}

}  // namespace kvcache
