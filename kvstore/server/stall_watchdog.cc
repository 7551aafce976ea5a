#include "kvstore/server/stall_watchdog.h"

#include <algorithm>
#include <chrono>

namespace kvcache {

StallWatchdog::StallWatchdog(absl::Duration limit)
    : limit_(limit), thread_([this] { Loop(); }) {}

StallWatchdog::~StallWatchdog() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  thread_.join();
}

void StallWatchdog::Add(Stallable* stream) {
  MutexLock lock(&mu_);
  streams_.insert(stream);
}

void StallWatchdog::Remove(Stallable* stream) {
  MutexLock lock(&mu_);
  streams_.erase(stream);
}

void StallWatchdog::Loop() {
  const absl::Duration period = std::max(limit_ / 4, absl::Milliseconds(10));
  const int64_t limit_ns = absl::ToInt64Nanoseconds(limit_);
  MutexLock lock(&mu_);
  while (!stopping_) {
    wake_.WaitFor(&mu_, absl::ToChronoNanoseconds(period));
    const int64_t now = absl::GetCurrentTimeNanos();
    for (Stallable* stream : streams_) {
      const int64_t since = stream->waiting_since_ns();
      if (since != 0 && now - since > limit_ns) {
        stalled_.fetch_add(1, std::memory_order_relaxed);
        stream->OnStalled();
      }
    }
  }
}

}  // namespace kvcache
