// Cuts off streams that wait on their client too long: a put stream that
// sends nothing in the middle of a block (its staged pages and parent pin
// would otherwise be held for as long as the client likes), a fetch stream
// whose reader takes nothing (its pins likewise). gRPC's reactors cannot
// time out a read or a write themselves, so one thread checks them all.
//
// Thread safety: all methods may be called from any thread. OnStalled runs
// on the watchdog's thread with the watchdog's lock held: it must not call
// Add or Remove, and must not block.
#ifndef KVCACHE_KVSTORE_SERVER_STALL_WATCHDOG_H_
#define KVCACHE_KVSTORE_SERVER_STALL_WATCHDOG_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_set>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace kvcache {

// A stream the watchdog may cut off.
class Stallable {
 public:
  virtual ~Stallable() = default;
  // Called once this has waited on its client longer than the limit, and
  // again at each later check while it still waits: an implementation cuts
  // its stream off and calls StopWaiting.
  virtual void OnStalled() = 0;

  // When this began waiting (absl::GetCurrentTimeNanos), or 0 if it is not.
  int64_t waiting_since_ns() const { return waiting_since_ns_.load(std::memory_order_relaxed); }

 protected:
  void StartWaiting() {
    waiting_since_ns_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  }
  void StopWaiting() { waiting_since_ns_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> waiting_since_ns_{0};
};

class StallWatchdog {
 public:
  // Checks every limit/4 (at most every 10 ms).
  explicit StallWatchdog(absl::Duration limit);
  ~StallWatchdog();  // stops the thread; REQUIRES: nothing is still added
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  void Add(Stallable* stream) ABSL_LOCKS_EXCLUDED(mu_);
  // Once this returns, OnStalled is neither running nor called again.
  void Remove(Stallable* stream) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Duration limit() const { return limit_; }
  // Streams cut off so far.
  uint64_t stalled() const { return stalled_.load(std::memory_order_relaxed); }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const absl::Duration limit_;
  std::atomic<uint64_t> stalled_{0};
  Mutex mu_;
  CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unordered_set<Stallable*> streams_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_STALL_WATCHDOG_H_
