#include "kvstore/server/kvcache_service.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/stack_arena.h"
#include "kvstore/server/fetch_reactor.h"
#include "kvstore/server/lookup_handler.h"
#include "kvstore/server/put_reactor.h"
#include "kvstore/server/raw_message.h"
#include "kvstore/server/refused_stream.h"
#include "kvstore/server/service_stats.h"
#include "kvstore/server/why.h"

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

// Adds the tiers holding `b` that `tiers` lacks, keeping them fastest first.
void AddTiers(const BlockView& b, google::protobuf::RepeatedField<int>* tiers) {
  std::set<int> all(tiers->begin(), tiers->end());
  if (b.on_gpu) all.insert(v1::TIER_GPU);
  if (b.on_host) all.insert(v1::TIER_HOST);
  if (b.on_nvme) all.insert(v1::TIER_NVME);
  tiers->Clear();
  for (int t : all) tiers->Add(t);
}

// What a non-admin's Stats shows of the tenants: its own line only.
void OnlyTenant(const std::string& tenant, v1::StatsResponse& response) {
  v1::TenantUsage own;
  for (const v1::TenantUsage& t : response.tenants()) {
    if (t.tenant() == tenant) own = t;
  }
  response.clear_tenants();
  if (!own.tenant().empty()) *response.add_tenants() = own;
}

}  // namespace

template <typename Request, typename Response, typename DoCall>
grpc::ServerUnaryReactor* KvCacheService::Unary(grpc::CallbackServerContext* ctx,
                                                const Raw* raw_request, Raw* raw_response,
                                                DoCall do_call) {
  // Both messages on an arena that starts on this stack: a call's messages
  // cost no heap allocation until they outgrow it.
  StackArena stack;
  Request& request = *google::protobuf::Arena::CreateMessage<Request>(stack.arena());
  Response& response = *google::protobuf::Arena::CreateMessage<Response>(stack.arena());
  absl::Status status = ParseRaw(*raw_request, &request);
  if (status.ok()) status = do_call(request, response);
  if (status.ok()) status = SerializeRaw(response, raw_response);
  return Done(ctx, status);
}

absl::StatusOr<Identity> KvCacheService::Authorize(const grpc::CallbackServerContext& ctx,
                                                   Role needed) {
  absl::StatusOr<Identity> who = IdentityOf(context_, ctx);
  if (!who.ok()) return who.status();
  if (absl::Status s = Permit(*who, needed); !s.ok()) return s;
  return who;
}

absl::StatusOr<std::string> KvCacheService::ActingTenant(const Identity& who,
                                                        const std::string& asked) {
  if (asked.empty() || asked == who.tenant) return who.tenant;
  if (absl::Status s = Permit(who, Role::kAdmin); !s.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("only an admin acts in another tenant (", s.message(), ")"));
  }
  return asked;
}

grpc::ServerUnaryReactor* KvCacheService::Hello(grpc::CallbackServerContext* ctx,
                                                const Raw* request, Raw* response) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::HelloRequest, v1::HelloResponse>(
      ctx, request, response, [&](const v1::HelloRequest&, v1::HelloResponse& r) {
        r.set_tenant(who->tenant);
        return DoHello(r);
      });
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
  response.set_data_port_lookup(true);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KvCacheService::Lookup(grpc::CallbackServerContext* ctx,
                                                 const Raw* request, Raw* response) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = Unary<v1::LookupRequest, v1::LookupResponse>(
      ctx, request, response, [&](const v1::LookupRequest& q, v1::LookupResponse& r) {
        return AnswerLookup(context_, who->tenant, q, r);
      });
  context_.counters.RecordLatency(RequestPath::kGrpc, RequestOp::kLookup, absl::Now() - start);
  return reactor;
}

grpc::ServerReadReactor<grpc::ByteBuffer>* KvCacheService::Put(grpc::CallbackServerContext* ctx,
                                                               Raw* response) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kWrite);
  if (!who.ok()) return new RefusedReadStream(ToGrpcStatus(who.status()));
  return new PutReactor(context_, who->tenant, ShareOf(context_, *ctx, who->tenant), response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* KvCacheService::Fetch(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return new RefusedWriteStream(ToGrpcStatus(who.status()));
  return new FetchReactor(context_, who->tenant, ShareOf(context_, *ctx, who->tenant), ctx, *request);
}

grpc::ServerUnaryReactor* KvCacheService::Evict(grpc::CallbackServerContext* ctx,
                                                const Raw* request, Raw* response) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kWrite);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::EvictRequest, v1::EvictResponse>(
      ctx, request, response, [&](const v1::EvictRequest& q, v1::EvictResponse& r) {
        absl::StatusOr<std::string> tenant = ActingTenant(*who, q.tenant());
        return tenant.ok() ? DoEvict(*tenant, q, r) : tenant.status();
      });
}

absl::Status KvCacheService::DoEvict(const std::string& tenant, const v1::EvictRequest& request,
                                     v1::EvictResponse& response) {
  BlockStore& store = context_.store;
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
      count = subtree ? store.EvictSubtree(k.ns, k.key, dry) : store.EvictKey(k.ns, k.key, dry);
      break;
    }
    case v1::EvictRequest::kNamespace: {
      if (absl::Status s = ValidateNamespace(request.namespace_(), context_.limits); !s.ok()) return s;
      std::optional<NamespaceId> ns = context_.store.namespaces().Find(tenant, request.namespace_());
      count = ns.has_value() ? store.EvictNamespaces({*ns}, dry) : EvictCount{};
      break;
    }
    case v1::EvictRequest::kAll:
      if (!request.all()) return absl::InvalidArgumentError("evict all=false selects nothing");
      count = store.EvictNamespaces(context_.store.namespaces().IdsOfTenant(tenant), dry);
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
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::ListRequest, v1::ListResponse>(
      ctx, request, response, [&](const v1::ListRequest& q, v1::ListResponse& r) {
        absl::StatusOr<std::string> tenant = ActingTenant(*who, q.tenant());
        return tenant.ok() ? DoList(*tenant, q, r) : tenant.status();
      });
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
  for (const BlockView& b : context_.store.Snapshot(ids)) {
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
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::InspectRequest, v1::InspectResponse>(
      ctx, request, response, [&](const v1::InspectRequest& q, v1::InspectResponse& r) {
        return DoInspect(who->tenant, q, r);
      });
}

absl::Status KvCacheService::DoInspect(const std::string& tenant,
                                       const v1::InspectRequest& request,
                                       v1::InspectResponse& response) {
  auto resolved = ResolveKey(context_, tenant, request.namespace_(), request.key());
  if (!resolved.ok()) return resolved.status();
  std::optional<BlockView> view;
  if (resolved->has_value()) view = context_.store.Inspect((*resolved)->ns, (*resolved)->key);
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
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::StatsRequest, v1::StatsResponse>(
      ctx, request, response, [&](const v1::StatsRequest&, v1::StatsResponse& r) {
        DoStats(r);
        if (who->role != Role::kAdmin) OnlyTenant(who->tenant, r);
        // Not in DoStats: /metrics renders it from its own thread, which may
        // start before kvstored sets this.
        r.set_metrics_address(context_.metrics_address);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* KvCacheService::Why(grpc::CallbackServerContext* ctx,
                                              const Raw* request, Raw* response) {
  absl::StatusOr<Identity> who = Authorize(*ctx, Role::kRead);
  if (!who.ok()) return Done(ctx, who.status());
  return Unary<v1::WhyRequest, v1::WhyResponse>(
      ctx, request, response, [&](const v1::WhyRequest& q, v1::WhyResponse& r) {
        return ExplainBlocks(context_, who->tenant, q, r);
      });
}

void KvCacheService::DoStats(v1::StatsResponse& response) { FillStats(context_, response); }

}  // namespace kvcache
