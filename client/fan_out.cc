#include "client/fan_out.h"

namespace kvcache {

FanOut::FanOut(absl::Duration idle_timeout) : idle_timeout_(idle_timeout) {}

FanOut::~FanOut() {
  MutexLock lock(&mu_);
  stopping_ = true;
  work_.SignalAll();
  while (alive_ > 0) all_exited_.Wait(&mu_);
}

size_t FanOut::threads() const {
  MutexLock lock(&mu_);
  return alive_;
}

void FanOut::Run(size_t count, const std::function<void(size_t)>& fn) {
  if (count == 0) return;
  Pending pending;
  {
    MutexLock lock(&pending.mu);
    pending.left = count - 1;
  }
  {
    MutexLock lock(&mu_);
    for (size_t i = 1; i < count; ++i) queue_.push_back({&fn, i, &pending});
    // Every queued request gets a thread that is not inside a request: none
    // waits behind another caller's blocking RPC.
    for (size_t free = alive_ - busy_; free < queue_.size(); ++free) {
      ++alive_;
      std::thread([this] { Worker(); }).detach();
    }
  }
  work_.SignalAll();
  fn(0);
  MutexLock lock(&pending.mu);
  while (pending.left > 0) pending.done.Wait(&pending.mu);
}

void FanOut::Worker() {
  MutexLock lock(&mu_);
  while (true) {
    bool timed_out = false;
    while (queue_.empty() && !stopping_ && !timed_out) {
      timed_out = !work_.WaitFor(&mu_, absl::ToChronoNanoseconds(idle_timeout_));
    }
    if (queue_.empty()) break;  // stopping, or idle too long
    const Task task = queue_.front();
    queue_.pop_front();
    ++busy_;
    mu_.Unlock();
    (*task.fn)(task.index);
    mu_.Lock();
    --busy_;
    MutexLock done(&task.pending->mu);  // after which the caller may return
    if (--task.pending->left == 0) task.pending->done.SignalAll();
  }
  if (--alive_ == 0) all_exited_.SignalAll();
}

}  // namespace kvcache
