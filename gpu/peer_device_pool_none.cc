#include "gpu/peer_device_pool.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<PeerDevicePool>> PeerDevicePool::Open(const std::string&,
                                                                     const std::string&, uint64_t,
                                                                     int) {
  return absl::UnavailableError("built without CUDA");
}

PeerDevicePool::~PeerDevicePool() = default;

absl::StatusOr<CopyTicket> PeerDevicePool::CopyOut(absl::Span<const CopyOp>, GpuStream) {
  return absl::UnavailableError("built without CUDA");
}

}  // namespace kvcache
