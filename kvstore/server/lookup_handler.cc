#include "kvstore/server/lookup_handler.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kvcache {
namespace {

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

v1::Tier TierOf(const ChainBlock& b) {
  return b.on_host ? v1::TIER_HOST : b.on_gpu ? v1::TIER_GPU : v1::TIER_NVME;
}

}  // namespace

absl::Status AnswerLookup(ServiceContext& context, const std::string& tenant,
                          const v1::LookupRequest& request, v1::LookupResponse& response) {
  if (absl::Status s = ValidateNamespace(request.namespace_(), context.limits); !s.ok()) return s;
  absl::StatusOr<std::vector<BlockKey>> parsed = LookupKeys(request, context.limits);
  if (!parsed.ok()) return parsed.status();
  const std::vector<BlockKey>& keys = *parsed;
  size_t hits = 0;
  std::vector<ChainBlock> blocks;
  const std::optional<NamespaceId> ns = context.store.namespaces().Find(tenant, request.namespace_());
  if (ns.has_value()) {
    blocks.reserve(keys.size());
    hits = context.store.LookupChain(*ns, keys, &blocks);
  }
  response.set_hit_count(static_cast<uint32_t>(hits));
  if (!request.packed_keys().empty()) {  // the client reads the packed answer
    response.mutable_packed_sizes()->Reserve(static_cast<int>(blocks.size()));
    std::string& tiers = *response.mutable_packed_tiers();
    tiers.reserve(blocks.size());
    for (const ChainBlock& block : blocks) {
      response.add_packed_sizes(block.size);
      tiers.push_back(static_cast<char>(TierOf(block)));
    }
  } else {
    for (const ChainBlock& block : blocks) {
      v1::BlockLocation* b = response.add_blocks();
      b->set_tier(TierOf(block));
      b->set_size(block.size);
    }
  }
  ServiceCounters& c = context.counters;
  if (hits < keys.size() && c.request_metrics) {
    c.CountMiss(RequestOp::kLookup, ns.has_value() ? context.store.WhyMissing(*ns, keys[hits])
                                                   : MissReason::kNeverStored);
  }
  c.lookups.fetch_add(1, std::memory_order_relaxed);
  c.lookup_keys.fetch_add(keys.size(), std::memory_order_relaxed);
  c.lookup_hit_keys.fetch_add(hits, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace kvcache
