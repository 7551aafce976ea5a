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
  Mutex done_mu;
  CondVar done_cv;
  size_t pending = count - 1;
  {
    MutexLock lock(&mu_);
    for (size_t i = 1; i < count; ++i) {
      queue_.push_back([&fn, i, &done_mu, &done_cv, &pending] {
        fn(i);
        MutexLock done(&done_mu);
        if (--pending == 0) done_cv.SignalAll();
      });
    }
    // Every queued request gets a thread that is free now or about to be:
    // none waits behind another caller's blocking RPC.
    const size_t free = idle_ + starting_;
    for (size_t n = free; n < queue_.size(); ++n) {
      ++starting_;
      ++alive_;
      std::thread([this] { Worker(); }).detach();
    }
  }
  work_.SignalAll();
  fn(0);
  MutexLock done(&done_mu);
  while (pending > 0) done_cv.Wait(&done_mu);
}

void FanOut::Worker() {
  MutexLock lock(&mu_);
  --starting_;
  while (true) {
    bool timed_out = false;
    while (queue_.empty() && !stopping_ && !timed_out) {
      ++idle_;
      timed_out = !work_.WaitFor(&mu_, absl::ToChronoNanoseconds(idle_timeout_));
      --idle_;
    }
    if (queue_.empty()) break;  // stopping, or idle too long
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    mu_.Unlock();
    task();
    mu_.Lock();
  }
  if (--alive_ == 0) all_exited_.SignalAll();
}

}  // namespace kvcache
