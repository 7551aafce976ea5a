// Asynchronous copies between host and GPU memory on the engine's own
// streams: one for uploads and one for downloads, so the two overlap with
// each other and with the worker's kernels. One Submit queues many copies
// (coalesced, then as one cudaMemcpyBatchAsync where the driver has it), so
// thousands of 32 KiB fragments cost one call, not thousands. Host memory
// must be pinned (gpu/pinned_memory.h) for the copies to be asynchronous DMA.
//
// Built without CUDA, or with no usable GPU, Create returns Unavailable with
// the reason.
//
// Thread safety: Submit may be called from any thread. A CopyTicket is used
// by one thread at a time.
#ifndef KVCACHE_GPU_COPY_ENGINE_H_
#define KVCACHE_GPU_COPY_ENGINE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "gpu/copy_batch.h"
#include "gpu/gpu_stream.h"

namespace kvcache {

// Completion of one Submit: a CUDA event recorded after its copies.
// Move-only; destroying it does not wait.
class CopyTicket {
 public:
  CopyTicket() = default;
  // A ticket for all the work queued on `stream` so far: copies queued
  // there by hand (gpu/peer_device_pool.h). Internal with CUDA's reason.
  static absl::StatusOr<CopyTicket> Record(GpuStream stream);
  CopyTicket(CopyTicket&& other) noexcept;
  CopyTicket& operator=(CopyTicket&& other) noexcept;
  CopyTicket(const CopyTicket&) = delete;
  CopyTicket& operator=(const CopyTicket&) = delete;
  ~CopyTicket();

  // False for a default-constructed or moved-from ticket.
  bool valid() const { return event_ != nullptr; }
  // Blocks until the copies are done. Internal with CUDA's reason if one of
  // them failed (a bad pointer, say).
  absl::Status Wait();
  // True once the copies are done, without blocking.
  absl::StatusOr<bool> Ready();
  // Makes work queued on `stream` after this call wait for the copies,
  // without blocking the host: how a worker's kernels consume fetched blocks.
  absl::Status ChainTo(GpuStream stream);

 private:
  friend class CopyEngine;
  explicit CopyTicket(GpuEvent event) : event_(event) {}
  GpuEvent event_ = nullptr;
};

class CopyEngine {
 public:
  enum class Direction { kToDevice, kToHost };

  struct Options {
    int device = 0;  // CUDA device index
    // False queues one cudaMemcpyAsync per copy even where the driver has
    // batched copies: for kvbench, to show what batching buys.
    bool batch_api = true;
  };

  // Unavailable (with the reason) without CUDA or without that device.
  static absl::StatusOr<std::unique_ptr<CopyEngine>> Create(const Options& options);

  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;
  // Waits for every queued copy.
  ~CopyEngine();

  // Queues `ops` on the direction's stream and returns their completion.
  // Copies within one Submit may run in any order; they must not overlap.
  // The memory must stay valid until the ticket is done. On an error,
  // nothing of this call is still in flight when it returns.
  absl::StatusOr<CopyTicket> Submit(Direction direction, absl::Span<const CopyOp> ops);

  // Makes copies queued from now on in `direction` wait for the work
  // already queued on `stream` (the worker's), without blocking the host:
  // so an upload does not overwrite memory a kernel is still reading, and a
  // download reads what a kernel wrote.
  absl::Status After(Direction direction, GpuStream stream);

  int device() const { return device_; }
  GpuStream stream(Direction direction) const {
    return direction == Direction::kToDevice ? to_device_ : to_host_;
  }
  // How batches are queued: "batched (cudaMemcpyBatchAsync)" or "one
  // cudaMemcpyAsync per copy (<why>)": turned off, or refused by the driver.
  std::string batch_mode() const;

 private:
  CopyEngine(int device, GpuStream to_device, GpuStream to_host, bool batch_api)
      : device_(device), to_device_(to_device), to_host_(to_host), use_batch_api_(batch_api) {}
  absl::Status QueueCopies(absl::Span<const CopyOp> ops, GpuStream stream);
  absl::Status QueueOneByOne(absl::Span<const CopyOp> ops, GpuStream stream);

  const int device_;
  GpuStream const to_device_;
  GpuStream const to_host_;
  // Cleared, for good, the first time the driver rejects a batch call.
  std::atomic<bool> use_batch_api_;
  std::atomic<int> batch_api_error_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_GPU_COPY_ENGINE_H_
