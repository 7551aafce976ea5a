#include "gpu/select_gpu.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status SelectGpu(int device) {
  int count = 0;
  if (cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat("no usable GPU: ", cudaGetErrorString(err)));
  }
  if (device < 0 || device >= count) {
    return absl::UnavailableError(
        absl::StrCat("GPU ", device, " does not exist (", count, " found)"));
  }
  if (cudaError_t err = cudaSetDevice(device); err != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat("GPU ", device, ": ", cudaGetErrorString(err)));
  }
  return absl::OkStatus();
}

}  // namespace kvcache
