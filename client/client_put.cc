// Client's puts: over the paths (same host, data port, gRPC), and PutAsync's
// queue and thread.
#include "client/client.h"


namespace kvcache {

absl::StatusOr<std::vector<v1::PutOutcome>> Client::Put(const std::string& ns,
                                                        const BlockKey& parent,
                                                        absl::Span<const PutBlock> blocks) {
  // Blocks without a result on one path go over the next (those the daemon
  // did store come back as PUT_ALREADY_CACHED).
  std::vector<v1::PutOutcome> outcomes;
  const Transport::Outcome sent = OverPaths([&](Transport& path) {
    const size_t before = outcomes.size();
    const BlockKey& rest_parent = before == 0 ? parent : blocks[before - 1].key;
    const absl::Time start = absl::Now();
    Transport::Outcome outcome = path.Put(ns, rest_parent, blocks.subspan(before), &outcomes);
    uint64_t bytes = 0;
    for (size_t i = before; i < outcomes.size() && i < blocks.size(); ++i) {
      bytes += blocks[i].bytes().size();
    }
    metrics_.Record(path.path(), ClientOp::kPut, absl::Now() - start, outcomes.size() - before,
                    bytes);
    if (path.path() == ClientPath::kSameHost) {
      local_path_blocks_.fetch_add(outcomes.size() - before, std::memory_order_relaxed);
    }
    return outcome;
  });
  if (!sent.status.ok()) return sent.status;
  return outcomes;
}

bool Client::PutAsync(const std::string& ns, const BlockKey& parent,
                      std::vector<PutBlock> blocks) {
  uint64_t bytes = 0;
  for (PutBlock& b : blocks) {
    if (!b.borrowed.empty()) {  // the caller's memory may change once we return
      b.payload.assign(reinterpret_cast<const char*>(b.borrowed.data()), b.borrowed.size());
      b.borrowed = {};
    }
    bytes += b.payload.size();
  }
  uint64_t inflight = inflight_put_bytes_.load();
  do {
    if (inflight + bytes > options_.max_inflight_put_bytes) {
      puts_dropped_.fetch_add(blocks.size(), std::memory_order_relaxed);
      return false;
    }
  } while (!inflight_put_bytes_.compare_exchange_weak(inflight, inflight + bytes));
  MutexLock lock(&mu_);
  put_queue_.push_back(PutJob{ns, parent, std::move(blocks), bytes});
  put_cv_.SignalAll();
  return true;
}

void Client::PutLoop() {
  while (true) {
    PutJob job;
    {
      MutexLock lock(&mu_);
      while (put_queue_.empty() && !stopping_) put_cv_.Wait(&mu_);
      if (put_queue_.empty()) return;  // stopping, and nothing left to send
      job = std::move(put_queue_.front());
      put_queue_.pop_front();
      put_busy_ = true;
    }
    absl::StatusOr<std::vector<v1::PutOutcome>> outcomes = Put(job.ns, job.parent, job.blocks);
    if (outcomes.ok()) {
      puts_sent_.fetch_add(job.blocks.size(), std::memory_order_relaxed);
    } else {
      put_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    inflight_put_bytes_.fetch_sub(job.bytes);
    MutexLock lock(&mu_);
    put_busy_ = false;
    put_cv_.SignalAll();
  }
}

void Client::Flush() {
  MutexLock lock(&mu_);
  while (!put_queue_.empty() || put_busy_) put_cv_.Wait(&mu_);
}

}  // namespace kvcache
