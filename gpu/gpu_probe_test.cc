#include "gpu/gpu_probe.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(GpuProbeTest, AlwaysExplainsItself) {
  GpuProbe probe = ProbeGpu();
  EXPECT_FALSE(probe.detail.empty());
  if (probe.device_count == 0) {
    GTEST_SKIP() << "no GPU here: " << probe.detail;
  }
  EXPECT_TRUE(probe.built_with_cuda);
  EXPECT_NE(probe.detail.find("GPU"), std::string::npos) << probe.detail;
}

}  // namespace
}  // namespace kvcache
