#include <cuda_runtime_api.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gpu/device_page_pool.h"
#include "gpu/device_page_pool_options.h"
#include "gpu/select_gpu.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<DevicePagePool>> DevicePagePool::Create(const Options& options) {
  absl::StatusOr<uint32_t> pages = CheckDevicePoolOptions(options);
  if (!pages.ok()) return pages.status();
  if (absl::Status selected = SelectGpu(options.device); !selected.ok()) return selected;
  const uint64_t bytes = uint64_t{*pages} * options.page_bytes;
  void* base = nullptr;
  if (cudaError_t err = cudaMalloc(&base, bytes); err != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return absl::ResourceExhaustedError(
        absl::StrFormat("GPU %d: cannot allocate a %d-byte page pool (%d of %d bytes free): %s",
                        options.device, bytes, free_bytes, total_bytes, cudaGetErrorString(err)));
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, options.device);
  std::string detail =
      absl::StrFormat("%.1f GiB in %d pages of %d KiB on GPU %d (%s)", bytes / double(1ull << 30),
                      *pages, options.page_bytes >> 10, options.device, prop.name);
  return std::unique_ptr<DevicePagePool>(
      new DevicePagePool(static_cast<uint8_t*>(base), /*host_backed=*/false, options.device,
                         options.page_bytes, *pages, std::move(detail)));
}

DevicePagePool::~DevicePagePool() {
  if (host_backed_) {
    std::free(base_);
    return;
  }
  cudaSetDevice(device_);
  cudaFree(base_);
}

}  // namespace kvcache
