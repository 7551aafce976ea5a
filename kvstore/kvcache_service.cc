#include "kvstore/kvcache_service.h"

#include "kvstore/replica_repairer.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "membership/etcd_registration.h"
#include "common/byte_size.h"
#include "kvstore/fetch_reactor.h"
#include "kvstore/put_reactor.h"
#include "kvstore/raw_message.h"
#include "kvstore/why.h"

namespace kvcache {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A block key named together with its namespace, as Evict and Inspect take it.
struct KeyInNamespace {
  NamespaceId ns;
  BlockKey key;
};

absl::StatusOr<std::optional<KeyInNamespace>> ResolveKey(ServiceContext& context,
                                                         const std::string& tenant,
                                                         const std::string& ns,
                                                         const std::string& key_bytes) {
  if (absl::Status s = ValidateNamespace(ns, context.limits); !s.ok()) return s;
  absl::StatusOr<BlockKey> key = BlockKey::FromBytes(key_bytes);
  if (!key.ok()) return key.status();
  std::optional<NamespaceId> id = context.store.namespaces().Find(tenant, ns);
  if (!id.has_value()) return std::optional<KeyInNamespace>();
  return std::optional<KeyInNamespace>(KeyInNamespace{*id, *key});
}

// A List page token: the last row's (namespace, root key), the namespace
// length-prefixed so that any bytes in it (NUL included) split back exactly.
std::string PageToken(const std::string& ns, const std::string& root) {
  return absl::WebSafeBase64Escape(absl::StrCat(ns.size(), ":", ns, root));
}

std::optional<std::pair<std::string, std::string>> ParsePageToken(const std::string& token) {
  std::string bytes;
  if (!absl::WebSafeBase64Unescape(token, &bytes)) return std::nullopt;
  const size_t colon = bytes.find(':');
  size_t ns_size = 0;
  if (colon == std::string::npos || colon == 0 || colon > 6 ||
      !absl::SimpleAtoi(absl::string_view(bytes).substr(0, colon), &ns_size) ||
      ns_size > bytes.size() - colon - 1) {
    return std::nullopt;
  }
  return std::make_pair(bytes.substr(colon + 1, ns_size), bytes.substr(colon + 1 + ns_size));
}

// A Lookup's chain, from `keys` or `packed_keys`: INVALID_ARGUMENT for both,
// a bad key, a packed run that is not whole keys, or too many keys.
absl::StatusOr<std::vector<BlockKey>> LookupKeys(const v1::LookupRequest& request,
                                                 const ServiceLimits& limits) {
  const std::string& packed = request.packed_keys();
  const size_t key_size = request.packed_key_size();
  if (!packed.empty() && request.keys_size() > 0) {
    return absl::InvalidArgumentError("lookup: give keys or packed_keys, not both");
  }
  if (!packed.empty() && (key_size < 1 || key_size > BlockKey::kMaxBytes ||
                          packed.size() % key_size != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("lookup: packed_keys of ", packed.size(),
                                                   " bytes is not whole keys of ", key_size));
  }
  const size_t count = packed.empty() ? request.keys_size() : packed.size() / key_size;
  if (count > limits.max_keys_per_request) {
    return absl::InvalidArgumentError(
        absl::StrCat("lookup of ", count, " keys; at most ", limits.max_keys_per_request));
  }
  std::vector<BlockKey> keys;
  keys.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<BlockKey> key =
        packed.empty() ? BlockKey::FromBytes(request.keys(i))
                       : BlockKey::FromBytes(absl::string_view(packed).substr(i * key_size, key_size));
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("key ", i, ": ", key.status().message()));
    keys.push_back(*key);
  }
  return keys;
}

// Adds the tiers holding `b` that `tiers` lacks, keeping them fastest first.
void AddTiers(const BlockView& b, google::protobuf::RepeatedField<int>* tiers) {
  std::set<int> all(tiers->begin(), tiers->end());
  if (b.on_gpu) all.insert(v1::TIER_GPU);
  if (b.on_host) all.insert(v1::TIER_HOST);
  if (b.on_nvme) all.insert(v1::TIER_NVME);
  tiers->Clear();
  for (int t : all) tiers->Add(t);
}

}  // namespace

template <typename Request, typename Response, typename DoCall>
grpc::ServerUnaryReactor* KvCacheService::Unary(grpc::CallbackServerContext* ctx,
                                                const Raw* raw_request, Raw* raw_response,
                                                DoCall do_call) {
  // Both messages live on an arena whose first block is on this stack, so a
  // call's messages (a Lookup's per-key BlockLocations) cost no heap
  // allocation until they outgrow it.
  alignas(8) char first_block[8 << 10];
  google::protobuf::ArenaOptions options;
  options.initial_block = first_block;
  options.initial_block_size = sizeof(first_block);
  google::protobuf::Arena arena(options);
  Request& request = *google::protobuf::Arena::CreateMessage<Request>(&arena);
  Response& response = *google::protobuf::Arena::CreateMessage<Response>(&arena);
  absl::Status status = ParseRaw(*raw_request, &request);
  if (status.ok()) status = do_call(request, response);
  if (status.ok()) status = SerializeRaw(response, raw_response);
  return Done(ctx, status);
}

grpc::ServerUnaryReactor* KvCacheService::Hello(grpc::CallbackServerContext* ctx,
                                                const Raw* request, Raw* response) {
  return Unary<v1::HelloRequest, v1::HelloResponse>(
      ctx, request, response,
      [&](const v1::HelloRequest&, v1::HelloResponse& r) { return DoHello(r); });
}

absl::Status KvCacheService::DoHello(v1::HelloResponse& response) {
  response.set_version(kVersion);
  response.set_data_port(context_.data_port.load(std::memory_order_relaxed));
  response.set_max_block_bytes(context_.limits.max_block_bytes);
  response.set_max_keys_per_request(context_.limits.max_keys_per_request);
  response.set_max_chunk_bytes(context_.limits.max_chunk_bytes);
  response.set_local_socket(context_.local_socket);
  response.set_instance_id(context_.instance_id);
  response.set_packed_lookup(true);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KvCacheService::Lookup(grpc::CallbackServerContext* ctx,
                                                 const Raw* request, Raw* response) {
  const std::string tenant = TenantOf(*ctx);
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = Unary<v1::LookupRequest, v1::LookupResponse>(
      ctx, request, response, [&](const v1::LookupRequest& q, v1::LookupResponse& r) {
        return DoLookup(tenant, q, r);
      });
  context_.counters.RecordLatency(RequestPath::kGrpc, RequestOp::kLookup, absl::Now() - start);
  return reactor;
}

absl::Status KvCacheService::DoLookup(const std::string& tenant, const v1::LookupRequest& request,
                                      v1::LookupResponse& response) {
  if (absl::Status s = ValidateNamespace(request.namespace_(), context_.limits); !s.ok()) return s;
  absl::StatusOr<std::vector<BlockKey>> parsed = LookupKeys(request, context_.limits);
  if (!parsed.ok()) return parsed.status();
  const std::vector<BlockKey>& keys = *parsed;
  size_t hits = 0;
  std::vector<ChainBlock> blocks;
  const std::optional<NamespaceId> ns =
      context_.store.namespaces().Find(tenant, request.namespace_());
  if (ns.has_value()) {
    blocks.reserve(keys.size());
    hits = context_.store.index().LookupChain(*ns, keys, &blocks);
  }
  response.set_hit_count(static_cast<uint32_t>(hits));
  for (const ChainBlock& block : blocks) {
    v1::BlockLocation* b = response.add_blocks();
    b->set_tier(block.on_host ? v1::TIER_HOST : block.on_gpu ? v1::TIER_GPU : v1::TIER_NVME);
    b->set_size(block.size);
  }
  ServiceCounters& c = context_.counters;
  if (hits < keys.size() && c.request_metrics) {
    c.CountMiss(RequestOp::kLookup, ns.has_value() ? context_.store.WhyMissing(*ns, keys[hits])
                                                   : MissReason::kNeverStored);
  }
  c.lookups.fetch_add(1, std::memory_order_relaxed);
  c.lookup_keys.fetch_add(keys.size(), std::memory_order_relaxed);
  c.lookup_hit_keys.fetch_add(hits, std::memory_order_relaxed);
  return absl::OkStatus();
}

grpc::ServerReadReactor<grpc::ByteBuffer>* KvCacheService::Put(grpc::CallbackServerContext* ctx,
                                                               Raw* response) {
  return new PutReactor(context_, TenantOf(*ctx), ShareOf(context_, *ctx), response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* KvCacheService::Fetch(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request) {
  return new FetchReactor(context_, TenantOf(*ctx), ShareOf(context_, *ctx), ctx, *request);
}

grpc::ServerUnaryReactor* KvCacheService::Evict(grpc::CallbackServerContext* ctx,
                                                const Raw* request, Raw* response) {
  const std::string tenant = TenantOf(*ctx);
  return Unary<v1::EvictRequest, v1::EvictResponse>(
      ctx, request, response,
      [&](const v1::EvictRequest& q, v1::EvictResponse& r) { return DoEvict(tenant, q, r); });
}

absl::Status KvCacheService::DoEvict(const std::string& tenant, const v1::EvictRequest& request,
                                     v1::EvictResponse& response) {
  BlockIndex& index = context_.store.index();
  const bool dry = request.dry_run();
  absl::StatusOr<EvictCount> count;
  switch (request.target_case()) {
    case v1::EvictRequest::kKey:
    case v1::EvictRequest::kSubtree: {
      const bool subtree = request.target_case() == v1::EvictRequest::kSubtree;
      const v1::KeyRef& ref = subtree ? request.subtree() : request.key();
      auto resolved = ResolveKey(context_, tenant, ref.namespace_(), ref.key());
      if (!resolved.ok()) return resolved.status();
      if (!resolved->has_value()) {
        return absl::NotFoundError(absl::StrCat("namespace '", ref.namespace_(), "' has no blocks"));
      }
      const KeyInNamespace& k = **resolved;
      count = subtree ? index.EvictSubtree(k.ns, k.key, dry) : index.EvictKey(k.ns, k.key, dry);
      break;
    }
    case v1::EvictRequest::kNamespace: {
      if (absl::Status s = ValidateNamespace(request.namespace_(), context_.limits); !s.ok()) return s;
      std::optional<NamespaceId> ns = context_.store.namespaces().Find(tenant, request.namespace_());
      count = ns.has_value() ? index.EvictNamespaces({*ns}, dry) : EvictCount{};
      break;
    }
    case v1::EvictRequest::kAll:
      if (!request.all()) return absl::InvalidArgumentError("evict all=false selects nothing");
      count = index.EvictNamespaces(context_.store.namespaces().IdsOfTenant(tenant), dry);
      break;
    case v1::EvictRequest::TARGET_NOT_SET:
      return absl::InvalidArgumentError("evict needs a key, subtree, namespace or all");
  }
  if (!count.ok()) return count.status();
  response.set_blocks(count->blocks);
  response.set_bytes(count->bytes);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KvCacheService::List(grpc::CallbackServerContext* ctx,
                                               const Raw* request, Raw* response) {
  const std::string tenant = TenantOf(*ctx);
  return Unary<v1::ListRequest, v1::ListResponse>(
      ctx, request, response,
      [&](const v1::ListRequest& q, v1::ListResponse& r) { return DoList(tenant, q, r); });
}

absl::Status KvCacheService::DoList(const std::string& tenant, const v1::ListRequest& request,
                                    v1::ListResponse& response) {
  NamespaceTable& names = context_.store.namespaces();
  std::vector<NamespaceId> ids;
  if (request.namespace_().empty()) {
    ids = names.IdsOfTenant(tenant);
  } else if (std::optional<NamespaceId> id = names.Find(tenant, request.namespace_())) {
    ids.push_back(*id);
  }
  // One row per (namespace, root), ordered by that pair; the page token is the
  // last row's pair, so pages stay consistent while blocks come and go.
  std::map<std::pair<std::string, std::string>, v1::PrefixInfo> rows;
  for (const BlockView& b : context_.store.index().Snapshot(ids)) {
    std::string ns = names.Name(b.ns).name;
    v1::PrefixInfo& row = rows[{ns, b.meta.root.ToBytes()}];
    if (row.blocks() == 0) {
      row.set_namespace_(ns);
      row.set_root_key(b.meta.root.ToBytes());
    }
    AddTiers(b, row.mutable_tiers());
    row.set_depth(std::max(row.depth(), b.meta.depth));
    row.set_blocks(row.blocks() + 1);
    row.set_bytes(row.bytes() + b.meta.size);
    row.set_hits(row.hits() + b.hits);
    if (b.children == 0) row.set_leaves(row.leaves() + 1);
    row.set_last_access_unix_micros(std::max(row.last_access_unix_micros(), b.last_access_micros));
  }
  auto it = rows.begin();
  if (!request.page_token().empty()) {
    std::optional<std::pair<std::string, std::string>> after = ParsePageToken(request.page_token());
    if (!after.has_value()) return absl::InvalidArgumentError("bad page token");
    it = rows.upper_bound(*after);
  }
  const uint32_t page = std::clamp<uint32_t>(request.page_size() == 0 ? 100 : request.page_size(),
                                             1, context_.limits.max_list_page);
  for (uint32_t n = 0; it != rows.end() && n < page; ++it, ++n) {
    *response.add_prefixes() = it->second;
  }
  if (it != rows.end()) {
    const auto& last = std::prev(it)->first;
    response.set_next_page_token(PageToken(last.first, last.second));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KvCacheService::Inspect(grpc::CallbackServerContext* ctx,
                                                  const Raw* request, Raw* response) {
  const std::string tenant = TenantOf(*ctx);
  return Unary<v1::InspectRequest, v1::InspectResponse>(
      ctx, request, response,
      [&](const v1::InspectRequest& q, v1::InspectResponse& r) { return DoInspect(tenant, q, r); });
}

absl::Status KvCacheService::DoInspect(const std::string& tenant,
                                       const v1::InspectRequest& request,
                                       v1::InspectResponse& response) {
  auto resolved = ResolveKey(context_, tenant, request.namespace_(), request.key());
  if (!resolved.ok()) return resolved.status();
  std::optional<BlockView> view;
  if (resolved->has_value()) view = context_.store.index().Inspect((*resolved)->ns, (*resolved)->key);
  if (!view.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("block ", absl::BytesToHexString(request.key()), " is not cached"));
  }
  const BlockMeta& m = view->meta;
  response.set_namespace_(request.namespace_());
  response.set_key(m.key.ToBytes());
  response.set_parent_key(m.parent.ToBytes());
  response.set_root_key(m.root.ToBytes());
  response.set_depth(m.depth);
  response.set_size(m.size);
  response.set_checksum(m.checksum);
  AddTiers(*view, response.mutable_tiers());
  response.set_tier(static_cast<v1::Tier>(response.tiers(0)));
  response.set_children(view->children);
  response.set_hits(view->hits);
  response.set_created_unix_micros(m.created_micros);
  response.set_last_access_unix_micros(view->last_access_micros);
  response.set_readers(view->readers);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KvCacheService::Stats(grpc::CallbackServerContext* ctx,
                                                const Raw* request, Raw* response) {
  return Unary<v1::StatsRequest, v1::StatsResponse>(
      ctx, request, response, [&](const v1::StatsRequest&, v1::StatsResponse& r) {
        DoStats(r);
        // Not in DoStats: /metrics renders it from its own thread, which may
        // start before kvstored sets this.
        r.set_metrics_address(context_.metrics_address);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KvCacheService::Why(grpc::CallbackServerContext* ctx,
                                              const Raw* request, Raw* response) {
  const std::string tenant = TenantOf(*ctx);
  return Unary<v1::WhyRequest, v1::WhyResponse>(
      ctx, request, response, [&](const v1::WhyRequest& q, v1::WhyResponse& r) {
        return ExplainBlocks(context_, tenant, q, r);
      });
}

void KvCacheService::DoStats(v1::StatsResponse& response) {
  BlockStore& store = context_.store;
  const ServiceCounters& c = context_.counters;
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };

  v1::TierStats* gpu = response.add_tiers();
  gpu->set_tier(v1::TIER_GPU);
  if (GpuTier* tier = store.gpu(); tier != nullptr) {
    gpu->set_enabled(!tier->failed());
    gpu->set_detail(tier->failed() ? absl::StrCat("disabled: ", tier->failure())
                                   : tier->memory().detail());
    gpu->set_capacity_bytes(tier->capacity_bytes());
    gpu->set_used_bytes(tier->used_bytes());
    gpu->set_blocks(store.index().device_blocks());
    gpu->set_hits(tier->copied_to_host() + load(c.gpu_leased_blocks));
    response.set_gpu_landed_blocks(tier->landed_blocks());
    response.set_gpu_promoted_blocks(tier->promoted_blocks());
    response.set_gpu_demoted_blocks(tier->demoted_blocks());
    response.set_gpu_copied_to_host(tier->copied_to_host());
    response.set_gpu_not_admitted(tier->not_admitted());
    response.set_gpu_leased_blocks(load(c.gpu_leased_blocks));
  } else {
    gpu->set_enabled(false);
    gpu->set_detail(store.gpu_unavailable());
  }

  v1::TierStats* host = response.add_tiers();
  host->set_tier(v1::TIER_HOST);
  host->set_enabled(true);
  host->set_detail(absl::StrCat("DRAM arena, ", FormatBytes(store.arena().page_bytes()), " pages",
                                store.arena().fd() >= 0 ? ", memfd, " : ", anonymous, ",
                                store.arena().page_backing(), ", ", store.arena().gpu_pinning()));
  host->set_capacity_bytes(store.arena().capacity_bytes());
  host->set_used_bytes(store.arena().used_bytes());
  host->set_blocks(store.index().host_blocks());
  host->set_hits(load(c.lookup_hit_keys));
  host->set_misses(load(c.lookup_keys) - load(c.lookup_hit_keys));
  host->set_bytes_in(load(c.bytes_in));
  host->set_bytes_out(load(c.bytes_out));

  v1::TierStats* nvme = response.add_tiers();
  nvme->set_tier(v1::TIER_NVME);
  if (NvmeTier* tier = store.nvme(); tier != nullptr) {
    const NvmeTier::Counters n = tier->counters();
    nvme->set_enabled(tier->enabled());
    nvme->set_detail(tier->Detail());
    nvme->set_capacity_bytes(tier->capacity_bytes());
    nvme->set_used_bytes(tier->used_bytes());
    nvme->set_blocks(tier->blocks());
    nvme->set_hits(n.read_blocks);
    nvme->set_bytes_in(n.written_bytes);
    nvme->set_bytes_out(n.read_bytes);
    response.set_nvme_corrupt_drops(n.corrupt_drops);
    response.set_nvme_write_errors(n.write_errors);
    response.set_nvme_read_errors(n.read_errors);
    response.set_nvme_not_admitted(n.not_admitted);
  } else {
    nvme->set_enabled(false);
    nvme->set_detail(store.nvme_unavailable());
  }
  static constexpr const char* kPaths[] = {"grpc", "data_port", "same_host"};
  static constexpr const char* kOps[] = {"lookup", "fetch", "put"};
  for (size_t p = 0; p < std::size(kPaths); ++p) {
    for (size_t o = 0; o < std::size(kOps); ++o) {
      const LatencyHistogram::Snapshot snap =
          context_.counters.Latency(RequestPath(p), RequestOp(o)).Take();
      v1::LatencyHistogram* h = response.add_latencies();
      h->set_path(kPaths[p]);
      h->set_op(kOps[o]);
      for (uint64_t bound : LatencyHistogram::kBoundsMicros) h->add_bucket_upper_micros(bound);
      for (uint64_t c : snap.counts) h->add_counts(c);
      h->set_count(snap.count);
      h->set_sum_micros(snap.sum_micros);
      h->set_bytes(load(c.path_bytes[p][o]));
    }
  }
  AddMissesAndTenants(response);
  if (const ReplicaRepairer* r = context_.repairer.load(std::memory_order_acquire)) {
    response.set_repair(r->Describe());
  }
  if (const EtcdRegistration* r = context_.cluster.load(std::memory_order_acquire)) {
    response.set_cluster(r->Describe());
  }
  response.set_spilled_blocks(store.spilled_blocks());
  response.set_promoted_blocks(store.promoted_blocks());
  response.set_nvme_evicted_blocks(store.nvme_evicted_blocks());
  response.set_nvme_restored_blocks(store.restored_blocks());
  response.set_nvme_restore_seconds(store.restore_seconds());

  response.set_pinned_bytes(load(store.pinned_bytes()));
  response.set_staged_bytes(load(store.staged_bytes()));
  response.set_lookups(load(c.lookups));
  response.set_lookup_keys(load(c.lookup_keys));
  response.set_lookup_hit_keys(load(c.lookup_hit_keys));
  response.set_puts_stored(load(c.puts_stored));
  response.set_puts_rejected(load(c.puts_rejected));
  response.set_fetches(load(c.fetches));
  response.set_evicted_blocks(store.evicted_blocks());
  response.set_version(kVersion);
  response.set_uptime_seconds(absl::ToInt64Seconds(absl::Now() - context_.started));
  response.set_page_bytes(store.arena().page_bytes());
  response.set_direct_reads(load(c.direct_reads));
  response.set_direct_read_bytes(load(c.direct_read_bytes));
  response.set_leases_held(load(c.leases_held));
  if (const BlockDirectory* d = store.directory(); d != nullptr) {
    response.set_block_directory(absl::StrCat(d->listed(), " blocks listed, ", d->unlisted(),
                                              " left unlisted since start (bucket full), ",
                                              FormatBytes(d->bytes())));
  } else {
    response.set_block_directory(absl::StrCat("off (", store.directory_unavailable(), ")"));
  }
}

void KvCacheService::AddMissesAndTenants(v1::StatsResponse& response) {
  const ServiceCounters& c = context_.counters;
  for (size_t r = 0; r < kMissReasons; ++r) {
    for (const auto& [op, counts] : {std::pair{"lookup", c.lookup_misses},
                                     std::pair{"fetch", c.fetch_misses}}) {
      const uint64_t n = counts[r].load(std::memory_order_relaxed);
      if (n == 0) continue;
      v1::MissCount* m = response.add_misses();
      m->set_op(op);
      m->set_reason(MissReasonName(static_cast<MissReason>(r)));
      m->set_count(n);
    }
  }
  std::map<std::string, v1::TenantUsage> tenants;  // sorted: a stable order
  for (const auto& [ns, usage] : context_.store.index().UsageByNamespace()) {
    const std::string tenant = context_.store.namespaces().Name(ns).tenant;
    v1::TenantUsage& t = tenants[tenant];
    t.set_tenant(tenant);
    t.set_blocks(t.blocks() + usage.blocks);
    t.set_bytes(t.bytes() + usage.bytes);
    t.set_namespaces(t.namespaces() + 1);
  }
  for (auto& [name, t] : tenants) *response.add_tenants() = std::move(t);
}

}  // namespace kvcache
