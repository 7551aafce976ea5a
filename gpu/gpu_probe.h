// Whether this process can use a GPU tier. Built against the CUDA runtime
// where the workspace found CUDA (see third_party/cuda), and as a stub that
// always answers "built without CUDA" where it did not.
//
// Thread safety: ProbeGpu may be called from any thread.
#ifndef KVCACHE_GPU_GPU_PROBE_H_
#define KVCACHE_GPU_GPU_PROBE_H_

#include <string>

namespace kvcache {

struct GpuProbe {
  bool built_with_cuda = false;
  int device_count = 0;
  // One line for logs and Stats: the devices found, or why there are none.
  std::string detail;
};

GpuProbe ProbeGpu();

}  // namespace kvcache

#endif  // KVCACHE_GPU_GPU_PROBE_H_
