#include "client/client.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "key/checksum.h"
#include "client/grpc_status.h"
#include "common/transport_args.h"
#include "proto/fetch_chunk_codec.h"

namespace kvcache {
namespace {

// Splits targets into up to `parts` contiguous runs of about equal bytes.
std::vector<absl::Span<const FetchTarget>> SplitByBytes(absl::Span<const FetchTarget> targets,
                                                        int parts, uint64_t total) {
  std::vector<absl::Span<const FetchTarget>> out;
  const uint64_t per_part = (total + parts - 1) / parts;
  size_t start = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    bytes += targets[i].dest.size();
    if (bytes >= per_part || i + 1 == targets.size()) {
      out.push_back(targets.subspan(start, i + 1 - start));
      start = i + 1;
      bytes = 0;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("client: address is empty");
  if (options.fetch_streams < 1 || options.fetch_streams > 64) {
    return absl::InvalidArgumentError("client: fetch_streams must be in [1, 64]");
  }
  if (options.chunk_bytes < 4096 || options.chunk_bytes > (16u << 20)) {
    return absl::InvalidArgumentError("client: chunk_bytes must be in [4 KiB, 16 MiB]");
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("client: deadline must be positive");
  }
  return std::unique_ptr<Client>(new Client(options));
}

Client::Client(const ClientOptions& options) : options_(options) {
  for (int i = 0; i < options.fetch_streams; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options.chunk_bytes) + (1 << 20));
    args.SetMaxSendMessageSize(static_cast<int>(options.chunk_bytes) + (1 << 20));
    for (const auto& [name, value] : BulkTransferChannelArgs()) args.SetInt(name, value);
    // A connection of its own per channel, so streams do not share one socket.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("kvcache.channel_index", i);
    // A cache should find a restarted daemon in a second or two, not after
    // gRPC's default backoff (which grows to two minutes); calls in between
    // fail fast and are misses anyway.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    channels_.push_back(
        grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args));
  }
  stub_ = v1::KvCache::NewStub(channels_[0]);
  FastPaths::Options paths;
  paths.address = options.address;
  paths.timeout = options.deadline;
  paths.use_local_path = options.use_local_path;
  paths.use_direct_reads = options.use_direct_reads;
  paths.use_data_port = options.use_data_port;
  paths.max_idle_connections = static_cast<size_t>(options.fetch_streams) * 2;
  fast_paths_ = std::make_unique<FastPaths>(paths, stub_.get());
  put_thread_ = std::thread([this] { PutLoop(); });
}

Client::~Client() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    put_cv_.SignalAll();
  }
  put_thread_.join();
}

FetchResult Client::Fetch(const std::string& ns, absl::Span<const FetchTarget> targets) {
  fetches_.fetch_add(1, std::memory_order_relaxed);
  FetchResult result;
  uint64_t total = 0;
  for (const FetchTarget& t : targets) {
    if (t.dest.empty()) {
      result.status = absl::InvalidArgumentError("fetch target with an empty buffer");
      fetch_errors_.fetch_add(1, std::memory_order_relaxed);
      metrics_.CountFetchMiss(ClientMiss::kError);
      return result;
    }
    total += t.dest.size();
  }
  if (targets.empty()) return result;
  const int streams = total >= options_.split_fetch_bytes
                          ? static_cast<int>(std::min<size_t>(options_.fetch_streams, targets.size()))
                          : 1;
  std::vector<absl::Span<const FetchTarget>> parts = SplitByBytes(targets, streams, total);
  std::vector<size_t> completed(parts.size(), 0);
  std::vector<std::vector<v1::Tier>> tiers(parts.size());
  std::vector<absl::Status> status(parts.size());
  std::vector<std::thread> helpers;
  for (size_t p = 1; p < parts.size(); ++p) {
    helpers.emplace_back([&, p] {
      status[p] = FetchOneStream(static_cast<int>(p), ns, parts[p], &completed[p], &tiers[p]);
    });
  }
  status[0] = FetchOneStream(0, ns, parts[0], &completed[0], &tiers[0]);
  for (std::thread& t : helpers) t.join();
  // The result is the leading run of targets that all arrived.
  for (size_t p = 0; p < parts.size(); ++p) {
    result.blocks += completed[p];
    result.tiers.insert(result.tiers.end(), tiers[p].begin(), tiers[p].end());
    if (!status[p].ok() && result.status.ok()) result.status = status[p];
    if (completed[p] < parts[p].size()) break;
  }
  if (!result.status.ok()) fetch_errors_.fetch_add(1, std::memory_order_relaxed);
  if (result.blocks < targets.size()) metrics_.CountFetchMiss(MissOf(result.status));
  for (size_t i = 0; i < result.blocks; ++i) {
    fetched_bytes_.fetch_add(targets[i].dest.size(), std::memory_order_relaxed);
  }
  return result;
}

v1::FetchRequest Client::MakeFetchRequest(const std::string& ns,
                                          absl::Span<const FetchTarget> targets) const {
  v1::FetchRequest request;
  request.set_namespace_(ns);
  request.set_max_chunk_bytes(options_.chunk_bytes);
  for (const FetchTarget& t : targets) {
    v1::FetchItem* item = request.add_items();
    item->set_key(t.key.data(), t.key.size());
    item->set_offset(t.offset);
    item->set_length(t.dest.size());
  }
  return request;
}

absl::Status Client::FetchOneStream(int channel, const std::string& ns,
                                    absl::Span<const FetchTarget> targets, size_t* completed,
                                    std::vector<v1::Tier>* tiers) {
  // Each path continues from where the one before it stopped.
  auto rest = [&] { return targets.subspan(*completed); };
  // Records an attempt on `path` that started at `start` and completed n.
  auto record = [&](ClientPath path, absl::Time start, size_t n) {
    uint64_t bytes = 0;
    for (size_t i = *completed; i < *completed + n && i < targets.size(); ++i) {
      bytes += targets[i].dest.size();
    }
    metrics_.Record(path, ClientOp::kFetch, absl::Now() - start, n, bytes);
    *completed += n;
  };
  FastPaths::Set paths = fast_paths_->Get();
  if (paths.local != nullptr) {
    size_t n = 0, direct = 0;
    const absl::Time start = absl::Now();
    DataPortClient::Outcome outcome = paths.local->Fetch(
        MakeFetchRequest(ns, rest()), rest(), options_.verify_local_fetches, &n, tiers, &direct);
    record(ClientPath::kSameHost, start, n);
    local_path_blocks_.fetch_add(n, std::memory_order_relaxed);
    local_direct_reads_.fetch_add(direct, std::memory_order_relaxed);
    if (!outcome.transport_failed) return outcome.status;
    local_path_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    fast_paths_->LocalFailed();
  }
  if (paths.data_port != nullptr) {
    size_t n = 0;
    const absl::Time start = absl::Now();
    DataPortClient::Outcome outcome = paths.data_port->Fetch(MakeFetchRequest(ns, rest()), rest(),
                                                             options_.verify_checksums, &n, tiers);
    record(ClientPath::kDataPort, start, n);
    if (!outcome.transport_failed) return outcome.status;
    data_port_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    fast_paths_->DataPortFailed();
  }
  size_t n = 0;
  const absl::Time start = absl::Now();
  absl::Status status = FetchOverGrpc(channel, MakeFetchRequest(ns, rest()), rest(), &n, tiers);
  record(ClientPath::kGrpc, start, n);
  return status;
}

absl::Status Client::FetchOverGrpc(int channel, const v1::FetchRequest& request,
                                   absl::Span<const FetchTarget> targets, size_t* completed,
                                   std::vector<v1::Tier>* tiers) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  // Fetch replies are read raw, so payload bytes go from gRPC's receive
  // buffers straight into the caller's memory (fetch_chunk_codec.h).
  const grpc::internal::RpcMethod method("/kvcache.v1.KvCache/Fetch",
                                         grpc::internal::RpcMethod::SERVER_STREAMING,
                                         channels_[channel]);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channels_[channel].get(),
                                                                    method, &ctx, request));
  absl::Status error;
  uint64_t received = 0;  // bytes of targets[*completed] so far
  grpc::ByteBuffer buffer;
  std::vector<grpc::Slice> slices;
  std::vector<absl::Span<const uint8_t>> pieces;
  while (reader->Read(&buffer)) {
    slices.clear();
    pieces.clear();
    if (!buffer.Dump(&slices).ok()) {
      error = absl::InternalError("unreadable fetch reply");
      break;
    }
    for (const grpc::Slice& s : slices) pieces.emplace_back(s.begin(), s.size());
    absl::StatusOr<DecodedFetchChunk> chunk = DecodeFetchChunk(pieces);
    if (!chunk.ok()) {
      error = chunk.status();
      break;
    }
    const FetchChunkHeader& h = chunk->header;
    if (*completed >= targets.size() || h.item_index != *completed) {
      error = absl::InternalError(absl::StrCat("fetch reply for item ", h.item_index, " out of order"));
      break;
    }
    const FetchTarget& t = targets[*completed];
    if (h.offset != t.offset + received || h.data_length > t.dest.size() - received) {
      error = absl::InternalError("fetch reply with a range that was not asked for");
      break;
    }
    for (absl::Span<const uint8_t> piece : chunk->data) {
      std::memcpy(t.dest.data() + received, piece.data(), piece.size());
      received += piece.size();
    }
    if (received < t.dest.size()) continue;
    const bool whole_block = t.offset == 0 && t.dest.size() == h.block_size;
    if (options_.verify_checksums && whole_block && BlockChecksum(t.dest) != h.block_checksum) {
      error = absl::DataLossError(absl::StrCat("block ", t.key.ToHex(), " failed its checksum"));
      break;
    }
    tiers->push_back(static_cast<v1::Tier>(h.tier));
    ++*completed;
    received = 0;
  }
  if (!error.ok()) ctx.TryCancel();
  absl::Status finish = FromGrpc(reader->Finish());
  return error.ok() ? finish : error;
}

ClientCounters Client::counters() const {
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  ClientCounters c;
  c.lookups = load(lookups_);
  c.lookup_errors = load(lookup_errors_);
  c.direct_lookups = load(direct_lookups_);
  c.fetches = load(fetches_);
  c.fetch_errors = load(fetch_errors_);
  c.fetched_bytes = load(fetched_bytes_);
  c.data_port_fallbacks = load(data_port_fallbacks_);
  c.local_path_fallbacks = load(local_path_fallbacks_);
  c.local_path_blocks = load(local_path_blocks_);
  c.local_direct_reads = load(local_direct_reads_);
  c.puts_sent = load(puts_sent_);
  c.puts_dropped = load(puts_dropped_);
  c.put_errors = load(put_errors_);
  c.figures = metrics_.Take();
  return c;
}

}  // namespace kvcache
