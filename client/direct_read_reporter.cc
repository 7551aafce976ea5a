#include "client/direct_read_reporter.h"

#include <chrono>

namespace kvcache {

DirectReadReporter::DirectReadReporter(Send send, absl::Duration delay, size_t max_blocks)
    : send_(std::move(send)), delay_(delay), max_blocks_(max_blocks) {
  thread_ = std::thread([this] { Run(); });
}

DirectReadReporter::~DirectReadReporter() {
  Pending rest;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    wake_.SignalAll();
  }
  thread_.join();
  {
    MutexLock lock(&mu_);
    rest = std::move(pending_);
  }
  SendBatch(std::move(rest));
}

void DirectReadReporter::Record(uint32_t ns, const BlockKey& key, uint64_t bytes) {
  Pending full;
  {
    MutexLock lock(&mu_);
    if (pending_.empty()) wake_.SignalAll();  // starts the delay
    ++pending_.reads[{ns, key}];
    pending_.bytes += bytes;
    if (pending_.reads.size() < max_blocks_) return;
    full = std::move(pending_);
    pending_ = Pending();
  }
  SendBatch(std::move(full));
}

void DirectReadReporter::RecordFetch() {
  MutexLock lock(&mu_);
  if (pending_.empty()) wake_.SignalAll();
  ++pending_.fetches;
}

void DirectReadReporter::Run() {
  const auto delay = absl::ToChronoNanoseconds(delay_);
  while (true) {
    Pending batch;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && pending_.empty()) wake_.Wait(&mu_);
      if (stopping_) return;
      // Let reads gather for one delay (a stop cuts it short).
      const auto until = std::chrono::steady_clock::now() + delay;
      while (!stopping_ && std::chrono::steady_clock::now() < until) {
        wake_.WaitFor(&mu_, until - std::chrono::steady_clock::now());
      }
      if (stopping_) return;  // the destructor sends what is left
      batch = std::move(pending_);
      pending_ = Pending();
    }
    SendBatch(std::move(batch));
  }
}

void DirectReadReporter::SendBatch(Pending batch) const {
  if (batch.empty()) return;
  v1::DirectReadReport report;
  for (const auto& [read, count] : batch.reads) {
    v1::DirectRead* r = report.add_reads();
    r->set_namespace_id(read.first);
    r->set_key(read.second.data(), read.second.size());
    r->set_count(count);
  }
  report.set_fetches(batch.fetches);
  report.set_bytes(batch.bytes);
  send_(report);
}

}  // namespace kvcache
