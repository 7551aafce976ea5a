#include "gpu/gpu_probe.h"

namespace kvcache {

GpuProbe ProbeGpu() {
  GpuProbe probe;
  probe.detail = "built without CUDA: no GPU tier";
  return probe;
}

}  // namespace kvcache
