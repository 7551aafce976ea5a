#include "client/client_metrics.h"

namespace kvcache {

const char* ClientPathName(ClientPath path) {
  switch (path) {
    case ClientPath::kSameHost:
      return "same_host";
    case ClientPath::kDataPort:
      return "data_port";
    case ClientPath::kGrpc:
      return "grpc";
    case ClientPath::kCount:
      break;
  }
  return "unknown";
}

const char* ClientOpName(ClientOp op) {
  switch (op) {
    case ClientOp::kLookup:
      return "lookup";
    case ClientOp::kFetch:
      return "fetch";
    case ClientOp::kPut:
      return "put";
    case ClientOp::kCount:
      break;
  }
  return "unknown";
}

const char* ClientMissName(ClientMiss miss) {
  switch (miss) {
    case ClientMiss::kNotCached:
      return "not_cached";
    case ClientMiss::kNodeDown:
      return "node_down";
    case ClientMiss::kDeadline:
      return "deadline";
    case ClientMiss::kError:
      return "error";
    case ClientMiss::kCount:
      break;
  }
  return "unknown";
}

ClientMiss MissOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
      return ClientMiss::kNotCached;
    case absl::StatusCode::kUnavailable:
      return ClientMiss::kNodeDown;
    case absl::StatusCode::kDeadlineExceeded:
      return ClientMiss::kDeadline;
    default:
      return ClientMiss::kError;
  }
}

PathFigures& PathFigures::operator+=(const PathFigures& other) {
  requests += other.requests;
  blocks += other.blocks;
  bytes += other.bytes;
  for (size_t b = 0; b < latency.counts.size(); ++b) latency.counts[b] += other.latency.counts[b];
  latency.count += other.latency.count;
  latency.sum_micros += other.latency.sum_micros;
  return *this;
}

ClientFigures& ClientFigures::operator+=(const ClientFigures& other) {
  lookup_keys += other.lookup_keys;
  lookup_hit_keys += other.lookup_hit_keys;
  for (size_t m = 0; m < kClientMisses; ++m) {
    lookup_misses[m] += other.lookup_misses[m];
    fetch_misses[m] += other.fetch_misses[m];
  }
  for (size_t p = 0; p < kClientPaths; ++p) {
    for (size_t o = 0; o < kClientOps; ++o) paths[p][o] += other.paths[p][o];
  }
  return *this;
}

void ClientMetrics::Record(ClientPath path, ClientOp op, absl::Duration took, uint64_t blocks,
                           uint64_t bytes) {
  Path& p = paths_[static_cast<size_t>(path)][static_cast<size_t>(op)];
  p.requests.fetch_add(1, std::memory_order_relaxed);
  p.blocks.fetch_add(blocks, std::memory_order_relaxed);
  p.bytes.fetch_add(bytes, std::memory_order_relaxed);
  p.latency.Record(took);
}

void ClientMetrics::CountLookup(size_t keys, size_t hits, const absl::Status& status) {
  CountLookup(keys, hits, MissOf(status));
}

void ClientMetrics::CountLookup(size_t keys, size_t hits, ClientMiss why) {
  lookup_keys_.fetch_add(keys, std::memory_order_relaxed);
  lookup_hit_keys_.fetch_add(hits, std::memory_order_relaxed);
  if (hits < keys) lookup_misses_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}

ClientFigures ClientMetrics::Take() const {
  ClientFigures f;
  f.lookup_keys = lookup_keys_.load(std::memory_order_relaxed);
  f.lookup_hit_keys = lookup_hit_keys_.load(std::memory_order_relaxed);
  for (size_t m = 0; m < kClientMisses; ++m) {
    f.lookup_misses[m] = lookup_misses_[m].load(std::memory_order_relaxed);
    f.fetch_misses[m] = fetch_misses_[m].load(std::memory_order_relaxed);
  }
  for (size_t p = 0; p < kClientPaths; ++p) {
    for (size_t o = 0; o < kClientOps; ++o) {
      const Path& in = paths_[p][o];
      PathFigures& out = f.paths[p][o];
      out.requests = in.requests.load(std::memory_order_relaxed);
      out.blocks = in.blocks.load(std::memory_order_relaxed);
      out.bytes = in.bytes.load(std::memory_order_relaxed);
      out.latency = in.latency.Take();
    }
  }
  return f;
}

}  // namespace kvcache
