// Runs a call's per-node requests in parallel on reused threads. A thread per
// request per call cost tens of microseconds each on this box, next to a
// loopback Lookup of about a hundred; kept threads make that a wake-up. The
// pool grows when every thread is busy (concurrent callers never queue behind
// each other's blocking RPCs) and a thread idle for `idle_timeout` exits.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_CLIENT_FAN_OUT_H_
#define KVCACHE_CLIENT_FAN_OUT_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace kvcache {

class FanOut {
 public:
  explicit FanOut(absl::Duration idle_timeout = absl::Seconds(30));
  // Waits for the threads to finish what they run and exit.
  ~FanOut();

  // Runs fn(0) .. fn(count - 1), fn(0) on the calling thread and the rest on
  // the pool, and returns when all have returned.
  void Run(size_t count, const std::function<void(size_t)>& fn) ABSL_LOCKS_EXCLUDED(mu_);

  // Threads alive now (for tests).
  size_t threads() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One caller's wait for its queued requests.
  struct Pending {
    Mutex mu;
    CondVar done;
    size_t left ABSL_GUARDED_BY(mu) = 0;
  };
  struct Task {
    const std::function<void(size_t)>* fn;
    size_t index;
    Pending* pending;
  };

  void Worker() ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration idle_timeout_;
  mutable Mutex mu_;
  CondVar work_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  size_t alive_ ABSL_GUARDED_BY(mu_) = 0;
  // Threads inside a request. A thread counts as free again before its
  // caller learns the request is done, so a caller's next Run finds it free.
  size_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CondVar all_exited_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_FAN_OUT_H_
