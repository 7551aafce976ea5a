// Client's lookups: the same-host block directory first, then the daemon
// over the data port, then over gRPC. Each rung continues the scan where
// the one before stopped, since the cache is prefix-closed and the daemon
// scans to the first miss.
#include <algorithm>

#include "client/client.h"
#include "client/grpc_status.h"
#include "client/lookup_wire.h"
#include "common/stack_arena.h"

namespace kvcache {
namespace {

// Fills `request` with `keys`: packed into one field where the daemon reads
// that (no allocation per key on either side; a chain has up to
// thousands), else one field per key. Returns whether it packed them.
bool FillLookupRequest(const std::string& ns, absl::Span<const BlockKey> keys, bool packed_lookup,
                       v1::LookupRequest& request) {
  request.set_namespace_(ns);
  const bool packed = packed_lookup && PackableKeys(keys);
  if (packed) {
    AppendPackedKeys(keys, request.mutable_packed_keys());
    request.set_packed_key_size(static_cast<uint32_t>(keys.front().size()));
  } else {
    for (const BlockKey& k : keys) request.add_keys(k.data(), k.size());
  }
  return packed;
}

// Appends the daemon's answer for `asked` keys to *result, in the form the
// request was made in; INTERNAL if it does not add up.
absl::Status ReadLookupResponse(const v1::LookupResponse& response, size_t asked, bool packed,
                                LookupResult* result) {
  const int hits = static_cast<int>(response.hit_count());
  const bool well_formed =
      response.hit_count() <= asked &&
      (packed ? response.packed_sizes_size() == hits &&
                    response.packed_tiers().size() == response.hit_count() &&
                    std::all_of(response.packed_tiers().begin(), response.packed_tiers().end(),
                                [](char t) { return v1::Tier_IsValid(t); })
              : response.blocks_size() == hits);
  if (!well_formed) return absl::InternalError("daemon sent a malformed LookupResponse");
  result->hits += response.hit_count();
  result->sizes.reserve(result->sizes.size() + hits);
  result->tiers.reserve(result->tiers.size() + hits);
  for (int i = 0; i < hits; ++i) {
    result->sizes.push_back(packed ? response.packed_sizes(i) : response.blocks(i).size());
    result->tiers.push_back(packed ? static_cast<v1::Tier>(response.packed_tiers()[i])
                                   : response.blocks(i).tier());
  }
  return absl::OkStatus();
}

}  // namespace

LookupResult Client::Lookup(const std::string& ns, absl::Span<const BlockKey> keys) {
  lookups_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time start = absl::Now();
  LookupResult result;
  bool final = false;
  const size_t listed = LookupListed(ns, keys, &result, &final);
  absl::Time asked = absl::Now();
  if (listed > 0 || final) {
    metrics_.Record(ClientPath::kSameHost, ClientOp::kLookup, asked - start, listed, 0);
  }
  if (final) {
    direct_lookups_.fetch_add(1, std::memory_order_relaxed);
    metrics_.CountLookup(keys.size(), result.hits, absl::OkStatus());
    return result;
  }
  const FastPaths::Set paths = fast_paths_->Get();
  if (paths.data_port != nullptr && paths.data_port_lookup) {
    bool transport_failed = false;
    result.status = LookupOverDataPort(*paths.data_port, ns, keys.subspan(listed), &result,
                                       &transport_failed);
    const absl::Time answered = absl::Now();
    metrics_.Record(ClientPath::kDataPort, ClientOp::kLookup, answered - asked,
                    result.hits - listed, 0);
    if (!transport_failed) {
      metrics_.CountLookup(keys.size(), result.hits, result.status);
      if (!result.status.ok()) lookup_errors_.fetch_add(1, std::memory_order_relaxed);
      return result;
    }
    data_port_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    fast_paths_->DataPortFailed();
    asked = answered;
  }
  result.status = LookupOverGrpc(ns, keys.subspan(listed), &result);
  metrics_.Record(ClientPath::kGrpc, ClientOp::kLookup, absl::Now() - asked,
                  result.hits - listed, 0);
  metrics_.CountLookup(keys.size(), result.hits, result.status);
  if (!result.status.ok()) lookup_errors_.fetch_add(1, std::memory_order_relaxed);
  return result;
}

size_t Client::LookupListed(const std::string& ns, absl::Span<const BlockKey> keys,
                            LookupResult* result, bool* final) {
  if (!options_.use_local_path || !options_.use_direct_lookups || keys.empty()) return 0;
  std::shared_ptr<LocalPathClient> local = fast_paths_->Get().local;
  if (local == nullptr) return 0;
  const std::optional<LocalPathClient::Listed> listed =
      local->LookupListed(ns, keys, &result->sizes);
  if (!listed.has_value()) return 0;
  result->hits = listed->blocks;
  result->tiers.assign(listed->blocks, v1::TIER_HOST);
  *final = listed->final;
  return listed->blocks;
}

absl::Status Client::LookupOverDataPort(DataPortClient& data_port, const std::string& ns,
                                        absl::Span<const BlockKey> keys, LookupResult* result,
                                        bool* transport_failed) {
  StackArena stack;
  auto& response = *google::protobuf::Arena::CreateMessage<v1::LookupResponse>(stack.arena());
  // One buffer per thread carries the request and then the answer: a
  // chain's keys and sizes are tens of KiB, allocated once, not per call.
  thread_local std::string wire;
  wire.assign(8, '\0');  // room for the frame's head
  // A daemon that serves lookups on its data port reads packed keys too.
  const bool packed = PackableKeys(keys);
  AppendLookupRequest(ns, keys, packed, &wire);
  const DataPortClient::Outcome outcome = data_port.Lookup(&wire, &response);
  if (wire.capacity() > (1 << 20)) std::string().swap(wire);  // a huge one is not kept
  *transport_failed = outcome.transport_failed;
  if (!outcome.status.ok()) return outcome.status;
  return ReadLookupResponse(response, keys.size(), packed, result);
}

absl::Status Client::LookupOverGrpc(const std::string& ns, absl::Span<const BlockKey> keys,
                                    LookupResult* result) {
  StackArena stack;
  auto& request = *google::protobuf::Arena::CreateMessage<v1::LookupRequest>(stack.arena());
  auto& response = *google::protobuf::Arena::CreateMessage<v1::LookupResponse>(stack.arena());
  // The daemon's Hello says whether it reads packed keys; a daemon that
  // does not answer it would not answer the lookup either.
  const absl::StatusOr<bool> packed_lookup = fast_paths_->PackedLookup();
  if (!packed_lookup.ok()) return packed_lookup.status();
  const bool packed = FillLookupRequest(ns, keys, *packed_lookup, request);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  absl::Status status = FromGrpc(stub_->Lookup(&ctx, request, &response));
  if (!status.ok()) return status;
  return ReadLookupResponse(response, keys.size(), packed, result);
}

LookupResult Client::LookupTokens(const KeySchema& schema, absl::Span<const uint32_t> tokens) {
  absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(schema, tokens);
  if (!keys.ok()) {
    LookupResult miss;
    miss.status = keys.status();
    return miss;
  }
  return Lookup(schema.NamespaceName(), *keys);
}

}  // namespace kvcache
