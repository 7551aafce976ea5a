#include "client/owed_releases.h"

#include <chrono>
#include <utility>

#include "kvcache/v1/local.pb.h"
#include "proto/local_message_io.h"

namespace kvcache {

OwedReleases::OwedReleases(absl::Duration max_delay, Send send)
    : max_delay_(max_delay), send_(std::move(send)) {}

OwedReleases::~OwedReleases() {
  std::thread thread;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    wake_.SignalAll();
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
  const std::string owed = Take();
  if (!owed.empty()) send_(owed);
}

void OwedReleases::Add(uint64_t lease_id) {
  v1::LocalRelease release;
  release.set_lease_id(lease_id);
  MutexLock lock(&mu_);
  AppendLocalMessage(LocalMessage::kRelease, release, &framed_);
  added_ = true;
  if (armed_ || stopping_) return;
  armed_ = true;
  if (thread_.joinable()) {
    wake_.SignalAll();
  } else {
    thread_ = std::thread([this] { Run(); });
  }
}

std::string OwedReleases::Take() {
  MutexLock lock(&mu_);
  return std::exchange(framed_, std::string());
}

void OwedReleases::Run() {
  while (true) {
    std::string due;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && !armed_) wake_.Wait(&mu_);
      // One period of max_delay_; adds meanwhile wake nobody.
      added_ = false;
      const auto until = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(max_delay_);
      while (!stopping_ && std::chrono::steady_clock::now() < until) {
        wake_.WaitFor(&mu_, until - std::chrono::steady_clock::now());
      }
      if (stopping_) return;  // the destructor sends what is left
      // Whatever no request took is sent now, at most a period after it was
      // added; a period with no add at all ends the watch until the next.
      due = std::exchange(framed_, std::string());
      if (due.empty() && !added_) armed_ = false;
    }
    if (!due.empty()) send_(due);
  }
}

}  // namespace kvcache
