#include "gpu/peer_device_pool.h"

#include "gpu/gpu_probe.h"
#include "gpu/gpu_test_util.h"
#include "gtest/gtest.h"

// Opening a pool exported by another process, and copying out of it, is
// tested end to end against a real kvstored (tests/e2e_gpu_ipc_test.cc):
// CUDA opens IPC handles only across processes.

namespace kvcache {
namespace {

TEST(PeerDevicePoolTest, AHandleThatIsNotOneIsRefused) {
  absl::Status status = PeerDevicePool::Open("not a handle", "0000:00:00.0", 1 << 20, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(status.message().empty());
}

TEST(PeerDevicePoolTest, APoolOnAnotherGpuIsRefused) {
  KVCACHE_SKIP_WITHOUT_GPU();
  // A well-formed handle, but for a PCI bus id no GPU here has: the copies
  // would have to cross to another GPU, so the staged path is taken.
  const std::string handle(64, '\0');
  absl::Status status = PeerDevicePool::Open(handle, "ffff:ff:1f.0", 1 << 20, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("not on GPU 0"), std::string::npos) << status;
}

}  // namespace
}  // namespace kvcache
