// A few threads for work that may wait on the disk, such as a gRPC Fetch that
// reads blocks back from NVMe, so gRPC's callback threads never do.
//
// Thread safety: Run may be called from any thread.
#ifndef KVCACHE_KVSTORE_STORE_IO_WORKERS_H_
#define KVCACHE_KVSTORE_STORE_IO_WORKERS_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace kvcache {

class IoWorkers {
 public:
  // `threads` >= 1.
  explicit IoWorkers(int threads);
  // Runs everything queued, then joins.
  ~IoWorkers();
  IoWorkers(const IoWorkers&) = delete;
  IoWorkers& operator=(const IoWorkers&) = delete;

  // Queues `work` to run on one of the threads.
  void Run(std::function<void()> work) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  Mutex mu_;
  CondVar ready_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_IO_WORKERS_H_
