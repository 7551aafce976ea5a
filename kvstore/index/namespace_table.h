// Interns (tenant, namespace) pairs as small integers, so index entries and
// lookups carry 4 bytes instead of two strings.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_INDEX_NAMESPACE_TABLE_H_
#define KVCACHE_KVSTORE_INDEX_NAMESPACE_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mutex.h"

namespace kvcache {

using NamespaceId = uint32_t;

struct NamespaceName {
  std::string tenant;
  std::string name;
};

class NamespaceTable {
 public:
  explicit NamespaceTable(size_t max_namespaces) : max_namespaces_(max_namespaces) {}

  // The id of a known pair, or nullopt. Never adds.
  std::optional<NamespaceId> Find(absl::string_view tenant, absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The id of the pair, added if new. RESOURCE_EXHAUSTED past max_namespaces.
  absl::StatusOr<NamespaceId> Intern(absl::string_view tenant, absl::string_view name)
      ABSL_LOCKS_EXCLUDED(mu_);
  // REQUIRES: id came from this table.
  NamespaceName Name(NamespaceId id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Ids of every namespace of `tenant`.
  std::vector<NamespaceId> IdsOfTenant(absl::string_view tenant) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every tenant with a namespace, each once, sorted.
  std::vector<std::string> Tenants() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static std::string Combine(absl::string_view tenant, absl::string_view name);

  const size_t max_namespaces_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, NamespaceId> ids_ ABSL_GUARDED_BY(mu_);
  std::vector<NamespaceName> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_INDEX_NAMESPACE_TABLE_H_
