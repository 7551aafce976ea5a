// Another process's GPU page pool (DevicePagePool::Export), opened in this
// one through its CUDA IPC handle: how a worker on the daemon's host copies
// blocks that live in the daemon's GPU pages straight into its own device
// memory, device to device, with no host copy on the way.
//
// Whoever copies out of it must keep the pages from being reused until the
// copies are done: the same-host path leases them (kvstore/server/local_path_server.h).
//
// Built without CUDA, Open returns Unavailable.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_GPU_PEER_DEVICE_POOL_H_
#define KVCACHE_GPU_PEER_DEVICE_POOL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "gpu/copy_batch.h"
#include "gpu/copy_engine.h"
#include "gpu/gpu_stream.h"

namespace kvcache {

class PeerDevicePool {
 public:
  // Opens the `bytes`-byte pool behind `ipc_handle` (a cudaIpcMemHandle_t)
  // on `device`. UNAVAILABLE without CUDA or that GPU, if the pool lives on
  // another GPU than `device` (its PCI bus id `pci_bus_id` says which), or
  // if CUDA refuses the handle (a pool of this same process, say).
  static absl::StatusOr<std::unique_ptr<PeerDevicePool>> Open(const std::string& ipc_handle,
                                                              const std::string& pci_bus_id,
                                                              uint64_t bytes, int device);
  PeerDevicePool(const PeerDevicePool&) = delete;
  PeerDevicePool& operator=(const PeerDevicePool&) = delete;
  // Closes the mapping. REQUIRES: no copy out of it is still queued.
  ~PeerDevicePool();

  // Device address of byte `offset` of the pool. REQUIRES: offset < bytes().
  const uint8_t* At(uint64_t offset) const { return base_ + offset; }
  uint64_t bytes() const { return bytes_; }
  int device() const { return device_; }

  // Queues device-to-device copies (sources inside the pool, destinations
  // in this process's memory on device()) on `stream`, after the work
  // already queued there, and returns their completion. On an error,
  // nothing of this call is still in flight when it returns.
  absl::StatusOr<CopyTicket> CopyOut(absl::Span<const CopyOp> ops, GpuStream stream);

 private:
  PeerDevicePool(const uint8_t* base, uint64_t bytes, int device)
      : base_(base), bytes_(bytes), device_(device) {}

  const uint8_t* const base_;
  const uint64_t bytes_;
  const int device_;
};

}  // namespace kvcache

#endif  // KVCACHE_GPU_PEER_DEVICE_POOL_H_
