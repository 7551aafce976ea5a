// Client's puts: the fallback ladder (same host, data port, gRPC), the gRPC
// Put stream, and PutAsync's queue and thread.
#include "client/client.h"

#include <algorithm>

#include "client/grpc_status.h"
#include "client/put_header.h"

namespace kvcache {

absl::StatusOr<std::vector<v1::PutOutcome>> Client::Put(const std::string& ns,
                                                        const BlockKey& parent,
                                                        absl::Span<const PutBlock> blocks) {
  // Blocks without a result on one path go over the next (those the daemon
  // did store come back as PUT_ALREADY_CACHED).
  std::vector<v1::PutOutcome> outcomes;
  auto rest = [&] { return blocks.subspan(outcomes.size()); };
  auto rest_parent = [&] {
    return outcomes.empty() ? parent : blocks[outcomes.size() - 1].key;
  };
  // Records an attempt on `path` that started at `start` with `before`
  // outcomes known.
  auto record = [&](ClientPath path, absl::Time start, size_t before) {
    uint64_t bytes = 0;
    for (size_t i = before; i < outcomes.size() && i < blocks.size(); ++i) {
      bytes += blocks[i].bytes().size();
    }
    metrics_.Record(path, ClientOp::kPut, absl::Now() - start, outcomes.size() - before, bytes);
  };
  FastPaths::Set paths = fast_paths_->Get();
  if (paths.local != nullptr) {
    const size_t before = outcomes.size();
    const absl::Time start = absl::Now();
    DataPortClient::Outcome sent =
        paths.local->Put(ns, rest_parent().ToBytes(), rest(), &outcomes);
    record(ClientPath::kSameHost, start, before);
    local_path_blocks_.fetch_add(outcomes.size() - before, std::memory_order_relaxed);
    if (!sent.transport_failed) {
      if (!sent.status.ok()) return sent.status;
      return outcomes;
    }
    local_path_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    fast_paths_->LocalFailed();
  }
  if (paths.data_port != nullptr) {
    const size_t before = outcomes.size();
    const absl::Time start = absl::Now();
    DataPortClient::Outcome sent =
        paths.data_port->Put(ns, rest_parent().ToBytes(), rest(), &outcomes);
    record(ClientPath::kDataPort, start, before);
    if (!sent.transport_failed) {
      if (!sent.status.ok()) return sent.status;
      return outcomes;
    }
    data_port_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    fast_paths_->DataPortFailed();
  }
  const size_t before = outcomes.size();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<v1::PutOutcome>> more = PutOverGrpc(ns, rest_parent(), rest());
  if (more.ok()) outcomes.insert(outcomes.end(), more->begin(), more->end());
  record(ClientPath::kGrpc, start, before);
  if (!more.ok()) return more.status();
  return outcomes;
}

absl::StatusOr<std::vector<v1::PutOutcome>> Client::PutOverGrpc(
    const std::string& ns, const BlockKey& parent, absl::Span<const PutBlock> blocks) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  v1::PutResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::PutRequest>> writer = stub_->Put(&ctx, &response);
  BlockKey previous = parent;
  v1::PutRequest request;
  for (const PutBlock& block : blocks) {
    *request.mutable_header() = MakePutHeader(ns, previous.ToBytes(), block);
    size_t offset = 0;
    do {
      const absl::string_view bytes = block.bytes();
      const size_t n = std::min<size_t>(options_.chunk_bytes, bytes.size() - offset);
      request.set_data(bytes.data() + offset, n);
      offset += n;
      if (!writer->Write(request)) break;
      request.Clear();
    } while (offset < block.bytes().size());
    request.Clear();
    previous = block.key;
  }
  writer->WritesDone();
  absl::Status status = FromGrpc(writer->Finish());
  if (!status.ok()) return status;
  std::vector<v1::PutOutcome> outcomes;
  for (int o : response.outcomes()) outcomes.push_back(static_cast<v1::PutOutcome>(o));
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
