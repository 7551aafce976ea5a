// For GPU tests: skip, saying why, where this process has no usable GPU.
#ifndef KVCACHE_GPU_GPU_TEST_UTIL_H_
#define KVCACHE_GPU_GPU_TEST_UTIL_H_

#include "gpu/gpu_probe.h"
#include "gtest/gtest.h"

// Use at the top of a TEST body.
#define KVCACHE_SKIP_WITHOUT_GPU()                                    \
  do {                                                                \
    const ::kvcache::GpuProbe kvcache_probe = ::kvcache::ProbeGpu();  \
    if (kvcache_probe.device_count == 0) {                            \
      GTEST_SKIP() << "no GPU here (" << kvcache_probe.detail << ")"; \
    }                                                                 \
  } while (0)

#endif  // KVCACHE_GPU_GPU_TEST_UTIL_H_
