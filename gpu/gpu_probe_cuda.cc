#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "gpu/gpu_probe.h"

namespace kvcache {

GpuProbe ProbeGpu() {
  GpuProbe probe;
  probe.built_with_cuda = true;
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    probe.detail = absl::StrCat("CUDA runtime ", runtime / 1000, ".", (runtime % 1000) / 10,
                                " present, no usable GPU: ", cudaGetErrorString(err));
    return probe;
  }
  probe.device_count = count;
  cudaDeviceProp prop{};
  if (count > 0 && cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    probe.detail = absl::StrCat(count, " GPU(s); device 0: ", prop.name, ", ",
                                prop.totalGlobalMem >> 20, " MiB (GPU tier not enabled yet)");
  } else {
    probe.detail = "CUDA runtime present, no GPU devices";
  }
  return probe;
}

}  // namespace kvcache
