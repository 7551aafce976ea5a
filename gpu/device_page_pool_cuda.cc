#include <cuda_runtime_api.h>

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

void DevicePagePool::FreeDeviceMemory() {
  cudaSetDevice(device_);
  cudaFree(base_);
}

absl::StatusOr<DevicePagePool::Share> DevicePagePool::ExportDeviceMemory() const {
  if (cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("GPU ", device_, ": ", cudaGetErrorString(err)));
  }
  // One handle for the whole allocation: receivers add page offsets to the
  // base they open it at.
  cudaIpcMemHandle_t handle;
  if (cudaError_t err = cudaIpcGetMemHandle(&handle, base_); err != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat(
        "GPU ", device_, ": no CUDA IPC handle for the page pool: ", cudaGetErrorString(err)));
  }
  char bus_id[32] = {};
  if (cudaError_t err = cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device_);
      err != cudaSuccess) {
    return absl::UnavailableError(
        absl::StrCat("GPU ", device_, ": no PCI bus id: ", cudaGetErrorString(err)));
  }
  Share share;
  share.ipc_handle.assign(reinterpret_cast<const char*>(&handle), sizeof(handle));
  share.pci_bus_id = bus_id;
  return share;
}

}  // namespace kvcache
