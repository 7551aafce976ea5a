// Fetching cached blocks straight into GPU memory, and storing blocks from
// it, for a worker whose KV cache lives on the GPU.
//
//   auto gpu = GpuTransfer::Create(client.get(), {.device = 0});
//   FetchResult r = (*gpu)->FetchToDevice(ns, targets, worker_stream);
//   // kernels queued on worker_stream from here on see the bytes
//
// A worker on the daemon's host, on the GPU that holds the daemon's GPU
// tier, first takes a GPU lease on the same-host path for the leading blocks
// that live in the daemon's GPU pages, and copies them device to device on
// the worker's stream through the pool's CUDA IPC handle
// (gpu/peer_device_pool.h); the lease is released once the stream has run
// the copies. The rest come from the daemon by whatever path the Client
// takes (same-host directory or lease, data port, gRPC) into a pinned
// staging buffer, then up to the GPU by DMA on the copy engine's upload
// stream. The staging buffer is
// two slots: while one slot's bytes are uploading, the next round is fetched
// into the other. A fetched block moves whole, so every path verifies it as
// Client::Fetch does; puts move in pieces of any size.
//
// Built without CUDA, or with no usable GPU, Create returns Unavailable.
//
// Thread safety: calls on one GpuTransfer run one at a time (they share the
// staging buffer); give each worker thread its own for parallel transfers.
#ifndef KVCACHE_CLIENT_GPU_TRANSFER_H_
#define KVCACHE_CLIENT_GPU_TRANSFER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/client.h"
#include "common/mutex.h"
#include "gpu/copy_engine.h"
#include "gpu/gpu_stream.h"
#include "gpu/peer_device_pool.h"
#include "gpu/pinned_memory.h"

namespace kvcache {

// Where one fetched block (or the range [offset, offset + bytes) of it)
// goes: device memory, not owned.
struct DeviceFetchTarget {
  BlockKey key;
  void* dest = nullptr;
  uint64_t bytes = 0;
  uint64_t offset = 0;
};

// One block to store, read from device memory.
struct DevicePutBlock {
  BlockKey key;
  const void* src = nullptr;
  uint64_t bytes = 0;
  bool evict_first = false;  // as PutBlock
  bool root = false;
};

class GpuTransfer {
 public:
  struct Options {
    int device = 0;                      // CUDA device of the destinations and sources
    uint64_t staging_bytes = 64u << 20;  // pinned; two slots of half each
    // Copy blocks in the daemon's GPU pages device to device when the
    // daemon shares them (same host, same GPU). Off: always stage (kvbench
    // compares the two).
    bool use_gpu_leases = true;
  };

  // `client` must outlive the transfer. InvalidArgument for a staging size
  // under 8 KiB; Unavailable without CUDA or that GPU.
  static absl::StatusOr<std::unique_ptr<GpuTransfer>> Create(Client* client,
                                                             const Options& options);

  // Copies cached blocks into device memory, in order, stopping at the first
  // one that is not cached (as Client::Fetch). The copies are ordered after
  // the work already queued on `stream`, and work queued on `stream` after
  // this returns sees them; the host does not wait for the last uploads.
  // `blocks` counts the leading targets whose bytes are (or will be, in
  // stream order) in place; `tiers` says TIER_GPU for blocks copied from
  // the daemon's GPU pages. InvalidArgument, with nothing fetched, for a
  // target bigger than a staging slot (half of staging_bytes). Blocks copied
  // under a GPU lease must be reached on `stream` within the daemon's lease
  // TTL (--lease_ttl_s, 30 s): after that their pages may be reused.
  FetchResult FetchToDevice(const std::string& ns, absl::Span<const DeviceFetchTarget> targets,
                            GpuStream stream);

  // Stores a chain read from device memory, once the work queued on
  // `stream` before the call has written it (as Client::Put: blocks[0]'s
  // parent is `parent`). Blocks until the daemon answered.
  absl::StatusOr<std::vector<v1::PutOutcome>> PutFromDevice(const std::string& ns,
                                                            const BlockKey& parent,
                                                            absl::Span<const DevicePutBlock> blocks,
                                                            GpuStream stream);

  const CopyEngine& engine() const { return *engine_; }
  // Blocks copied device to device from the daemon's GPU pages so far.
  uint64_t gpu_leased_blocks() const { return gpu_leased_blocks_.load(std::memory_order_relaxed); }
  // Waits for copies still running under GPU leases and releases them.
  ~GpuTransfer();

 private:
  // A GPU lease whose copies are queued on a worker's stream.
  struct PendingLease {
    CopyTicket copied;
    std::shared_ptr<LocalPathClient> local;
    uint64_t lease_id;
  };

  GpuTransfer(Client* client, const Options& options, std::unique_ptr<CopyEngine> engine,
              std::unique_ptr<PinnedBuffer> staging);
  // Copies the leading targets that live in the daemon's GPU pages device to
  // device on `stream`; returns how many (0 when there is no such path).
  size_t CopyFromDaemonGpu(const std::string& ns, absl::Span<const DeviceFetchTarget> targets,
                           GpuStream stream, absl::Status* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The daemon's pool opened for `local`, or null if it cannot be.
  PeerDevicePool* PeerPoolFor(const std::shared_ptr<LocalPathClient>& local)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases the leases whose copies are done; with `wait`, all of them.
  void ReleaseLeases(bool wait) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Client* const client_;
  Mutex mu_;  // one transfer at a time: they share the staging buffer
  const std::unique_ptr<CopyEngine> engine_;
  const std::unique_ptr<PinnedBuffer> staging_ ABSL_PT_GUARDED_BY(mu_);
  const uint64_t slot_bytes_;
  const bool use_gpu_leases_;
  std::vector<PendingLease> pending_ ABSL_GUARDED_BY(mu_);
  // The daemon's pool as opened for the same-host connection `peer_for_`,
  // or null if it could not be opened for that one.
  std::weak_ptr<LocalPathClient> peer_for_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PeerDevicePool> peer_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> gpu_leased_blocks_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_GPU_TRANSFER_H_
