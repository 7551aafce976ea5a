#include "kvstore/server/put_admission.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::StatusOr<PutAdmission> AdmitPut(ServiceContext& service, const std::string& tenant,
                                      ConnectionShare* share, const v1::PutBlockHeader& header) {
  const ServiceLimits& limits = service.limits;
  if (absl::Status s = ValidateNamespace(header.namespace_(), limits); !s.ok()) return s;
  absl::StatusOr<BlockKey> key = BlockKey::FromBytes(header.key());
  if (!key.ok()) return key.status();
  BlockMeta meta;
  meta.key = *key;
  if (!header.parent_key().empty()) {
    absl::StatusOr<BlockKey> parent = BlockKey::FromBytes(header.parent_key());
    if (!parent.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("parent ", parent.status().message()));
    }
    if (*parent == *key) return absl::InvalidArgumentError("a block cannot be its own parent");
    meta.parent = *parent;
  }
  if (header.size() == 0 || header.size() > limits.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("block size ", header.size(),
                                                   " not in [1, ", limits.max_block_bytes, "]"));
  }
  meta.size = header.size();
  meta.checksum = header.checksum();
  meta.evict_first = header.evict_first();
  // A namespace the daemon does not know yet is interned only when its
  // first block is committed (CommitPut): a put that stores nothing must not
  // use up the table.
  const std::optional<NamespaceId> ns =
      service.store.namespaces().Find(tenant, header.namespace_());

  PutAdmission admission;
  BlockStore& store = service.store;
  if (ns.has_value() && store.Inspect(*ns, meta.key).has_value()) {
    admission.outcome = v1::PUT_ALREADY_CACHED;
    return admission;
  }
  std::optional<BlockPin> parent_pin;
  if (!meta.parent.empty()) {
    // Pinned while the child is staged, so making room for the child can
    // never evict the block it hangs from. An unknown namespace holds no
    // parent.
    if (ns.has_value()) parent_pin = store.PinAsParent(*ns, meta.parent);
    if (!parent_pin.has_value()) {
      admission.outcome = v1::PUT_PARENT_MISSING;
      return admission;
    }
  }
  if (meta.size > service.store.arena().capacity_bytes()) {
    admission.outcome = v1::PUT_NO_SPACE;  // could never fit the host tier
    return admission;
  }
  // No pages yet: they are taken as the bytes arrive (StagedBlock), so a
  // header alone holds nothing and evicts nothing.
  admission.staged = std::make_unique<StagedBlock>(ns, std::move(meta), service.store, share,
                                                   std::move(parent_pin));
  return admission;
}

absl::StatusOr<v1::PutOutcome> CommitPut(ServiceContext& service, const std::string& tenant,
                                         const std::string& ns, StagedBlock& staged) {
  if (!staged.ns().has_value()) {
    if (absl::Status s = staged.Verify(); !s.ok()) return s;
    absl::StatusOr<NamespaceId> id = service.store.namespaces().Intern(tenant, ns);
    if (!id.ok()) return id.status();
    staged.set_ns(*id);
  }
  absl::StatusOr<InsertOutcome> inserted = service.store.CommitWithinQuota(tenant, staged);
  if (IsNoRoom(inserted.status())) return v1::PUT_NO_SPACE;
  if (!inserted.ok()) return inserted.status();
  switch (*inserted) {
    case InsertOutcome::kStored:
      service.counters.puts_stored.fetch_add(1, std::memory_order_relaxed);
      service.store.BlockStored(*staged.ns(), staged.meta().key);
      return v1::PUT_STORED;
    case InsertOutcome::kAlreadyCached:
      return v1::PUT_ALREADY_CACHED;
    case InsertOutcome::kParentMissing:
      return v1::PUT_PARENT_MISSING;
  }
  return absl::InternalError("unknown insert outcome");
}

absl::StatusOr<v1::PutOutcome> PutStagedBytes(ServiceContext& service, const std::string& tenant,
                                              ConnectionShare* share,
                                              const v1::PutBlockHeader& header,
                                              absl::Span<const uint8_t> bytes) {
  absl::StatusOr<v1::PutOutcome> outcome = [&]() -> absl::StatusOr<v1::PutOutcome> {
    absl::StatusOr<PutAdmission> admission = AdmitPut(service, tenant, share, header);
    if (!admission.ok()) return admission.status();
    if (admission->staged == nullptr) return admission->outcome;
    StagedBlock& staged = *admission->staged;
    const absl::Status appended = staged.Append(bytes);  // copies and hashes
    if (IsNoRoom(appended)) return v1::PUT_NO_SPACE;
    if (!appended.ok()) return appended;
    service.counters.AddBytes(RequestPath::kSameHost, RequestOp::kPut, bytes.size());
    return CommitPut(service, tenant, header.namespace_(), staged);
  }();
  if (!outcome.ok()) service.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
  return outcome;
}

}  // namespace kvcache
