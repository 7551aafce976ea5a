#include "kvstore/server/why.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

// Other namespaces a key is looked for in, at most: enough for any real
// deployment's namespaces per tenant, and a bound on one call's work.
constexpr size_t kMaxOtherNamespaces = 4096;

void Explain(ServiceContext& context, std::optional<NamespaceId> ns,
             const std::vector<NamespaceId>& others, const BlockKey& key, v1::BlockWhy& out) {
  BlockStore& store = context.store;
  out.set_key(key.ToBytes());
  if (ns.has_value()) {
    if (std::optional<BlockView> view = store.Inspect(*ns, key)) {
      out.set_cached(true);
      if (view->on_gpu) out.add_tiers(v1::TIER_GPU);
      if (view->on_host) out.add_tiers(v1::TIER_HOST);
      if (view->on_nvme) out.add_tiers(v1::TIER_NVME);
      return;
    }
    if (std::optional<Drop> drop = store.FindDrop(*ns, key)) {
      out.set_reason(MissReasonName(drop->reason));
      out.set_unix_micros(drop->unix_micros);
      return;
    }
  }
  for (NamespaceId other : others) {
    if (store.Inspect(other, key).has_value()) {
      out.set_reason("wrong_namespace");
      out.set_other_namespace(context.store.namespaces().Name(other).name);
      return;
    }
  }
  out.set_reason(MissReasonName(MissReason::kNeverStored));
}

}  // namespace

absl::Status ExplainBlocks(ServiceContext& context, const std::string& tenant,
                           const v1::WhyRequest& request, v1::WhyResponse& response) {
  if (absl::Status s = ValidateNamespace(request.namespace_(), context.limits); !s.ok()) return s;
  if (request.keys_size() > static_cast<int>(context.limits.max_keys_per_request)) {
    return absl::InvalidArgumentError(absl::StrCat(request.keys_size(), " keys; at most ",
                                                   context.limits.max_keys_per_request));
  }
  std::vector<BlockKey> keys;
  keys.reserve(request.keys_size());
  for (int i = 0; i < request.keys_size(); ++i) {
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(request.keys(i));
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("key ", i, ": ", key.status().message()));
    }
    keys.push_back(*key);
  }
  NamespaceTable& namespaces = context.store.namespaces();
  const std::optional<NamespaceId> ns = namespaces.Find(tenant, request.namespace_());
  std::vector<NamespaceId> others;
  for (NamespaceId id : namespaces.IdsOfTenant(tenant)) {
    if (id != ns && others.size() < kMaxOtherNamespaces) others.push_back(id);
  }
  for (const BlockKey& key : keys) Explain(context, ns, others, key, *response.add_blocks());
  const DropRecord& drops = context.store.drops();
  response.set_drops_recorded(drops.size());
  response.set_drop_record_capacity(drops.capacity());
  return absl::OkStatus();
}

}  // namespace kvcache
