// What the GPU tier of the cache needs of a GPU: a page pool
// (gpu/device_page_pool.h) and blocking copies between its pages and pinned
// host memory, queued on the copy engine's streams (gpu/copy_engine.h).
//
// CreateHostBacked gives the same object over a host-memory pool, copying
// with memcpy: the tier's movement rules (admission, demotion, promotion)
// are tested with it on machines without a GPU, and the same tests run
// against Create where there is one.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_GPU_DEVICE_MEMORY_H_
#define KVCACHE_GPU_DEVICE_MEMORY_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/mutex.h"
#include "gpu/copy_batch.h"
#include "gpu/copy_engine.h"
#include "gpu/device_page_pool.h"

namespace kvcache {

class DeviceMemory {
 public:
  // A pool on options.device with its copy engine. Errors as
  // DevicePagePool::Create and CopyEngine::Create.
  static absl::StatusOr<std::unique_ptr<DeviceMemory>> Create(
      const DevicePagePool::Options& options);
  // A pool in host memory; copies are memcpy.
  static absl::StatusOr<std::unique_ptr<DeviceMemory>> CreateHostBacked(
      const DevicePagePool::Options& options);

  DevicePagePool& pool() { return *pool_; }
  const DevicePagePool& pool() const { return *pool_; }

  // Runs the copies (host to pool pages / pool pages to host) and waits for
  // them. Internal with the cause if the GPU reports an error.
  absl::Status Upload(absl::Span<const CopyOp> ops);
  absl::Status Download(absl::Span<const CopyOp> ops);

  // One line for the banner and Stats.
  std::string detail() const;

  // Tests: every later copy fails with `status`, as on a GPU that died.
  void InjectCopyFailure(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  DeviceMemory(std::unique_ptr<DevicePagePool> pool, std::unique_ptr<CopyEngine> engine)
      : pool_(std::move(pool)), engine_(std::move(engine)) {}
  absl::Status Copy(CopyEngine::Direction direction, absl::Span<const CopyOp> ops);

  // The engine is destroyed first: it waits for its copies, which touch the pool.
  std::unique_ptr<DevicePagePool> pool_;
  std::unique_ptr<CopyEngine> engine_;  // null when host-backed
  // Set once a failure is injected, so copies take mu_ only then.
  std::atomic<bool> failure_injected_{false};
  Mutex mu_;
  absl::Status injected_failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_GPU_DEVICE_MEMORY_H_
