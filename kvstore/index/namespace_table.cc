#include "kvstore/index/namespace_table.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace kvcache {

std::string NamespaceTable::Combine(absl::string_view tenant, absl::string_view name) {
  // Length-prefix the tenant so ("a", "bc") and ("ab", "c") never collide.
  return absl::StrCat(tenant.size(), ":", tenant, name);
}

std::optional<NamespaceId> NamespaceTable::Find(absl::string_view tenant,
                                                absl::string_view name) const {
  const std::string k = Combine(tenant, name);
  MutexLock lock(&mu_);
  auto it = ids_.find(k);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<NamespaceId> NamespaceTable::Intern(absl::string_view tenant,
                                                   absl::string_view name) {
  std::string k = Combine(tenant, name);
  MutexLock lock(&mu_);
  auto it = ids_.find(k);
  if (it != ids_.end()) return it->second;
  if (names_.size() >= max_namespaces_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many namespaces (limit ", max_namespaces_, ")"));
  }
  const NamespaceId id = static_cast<NamespaceId>(names_.size());
  names_.push_back({std::string(tenant), std::string(name)});
  ids_.emplace(std::move(k), id);
  return id;
}

NamespaceName NamespaceTable::Name(NamespaceId id) const {
  MutexLock lock(&mu_);
  return names_.at(id);
}

std::vector<NamespaceId> NamespaceTable::IdsOfTenant(absl::string_view tenant) const {
  MutexLock lock(&mu_);
  std::vector<NamespaceId> ids;
  for (NamespaceId id = 0; id < names_.size(); ++id) {
    if (names_[id].tenant == tenant) ids.push_back(id);
  }
  return ids;
}

std::vector<std::string> NamespaceTable::Tenants() const {
  std::set<std::string> tenants;
  {
    MutexLock lock(&mu_);
    for (const NamespaceName& n : names_) tenants.insert(n.tenant);
  }
  return {tenants.begin(), tenants.end()};
}

}  // namespace kvcache
