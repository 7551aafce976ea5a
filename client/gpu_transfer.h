// Fetching cached blocks straight into GPU memory, and storing blocks from
// it, for a worker whose KV cache lives on the GPU.
//
//   auto gpu = GpuTransfer::Create(client.get(), {.device = 0});
//   FetchResult r = (*gpu)->FetchToDevice(ns, targets, worker_stream);
//   // kernels queued on worker_stream from here on see the bytes
//
// Bytes come from the daemon by whatever path the Client takes (same-host
// directory or lease, data port, gRPC) into a pinned staging buffer, then up
// to the GPU by DMA on the copy engine's upload stream. The staging buffer is
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
  // stream order) in place. InvalidArgument, with nothing fetched, for a
  // target bigger than a staging slot (half of staging_bytes).
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

 private:
  GpuTransfer(Client* client, std::unique_ptr<CopyEngine> engine,
              std::unique_ptr<PinnedBuffer> staging);

  Client* const client_;
  Mutex mu_;  // one transfer at a time: they share the staging buffer
  const std::unique_ptr<CopyEngine> engine_;
  const std::unique_ptr<PinnedBuffer> staging_ ABSL_PT_GUARDED_BY(mu_);
  const uint64_t slot_bytes_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_GPU_TRANSFER_H_
