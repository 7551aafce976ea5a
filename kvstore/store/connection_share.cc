#include "kvstore/store/connection_share.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status ConnectionShare::ChargeOwn(uint64_t bytes, const char* what, const char* who,
                                        const char* flag) {
  uint64_t held = held_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ || held > limit_ - bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(who, ": ", held, " bytes already staged or pinned; ", bytes, " more ",
                       what, " would pass their share of the host arena, ", limit_, " bytes (",
                       flag, ")"));
    }
  } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return absl::OkStatus();
}

absl::Status ConnectionShare::Charge(uint64_t bytes, const char* what) {
  if (absl::Status s = ChargeOwn(bytes, what, "this connection", "--connection_share"); !s.ok()) {
    return s;
  }
  if (tenant_ == nullptr) return absl::OkStatus();
  absl::Status s = tenant_->ChargeOwn(bytes, what, "this tenant's connections", "--tenant_share");
  if (!s.ok()) held_.fetch_sub(bytes, std::memory_order_relaxed);
  return s;
}

std::shared_ptr<ConnectionShare> ConnectionShares::TenantShare(const std::string& tenant) {
  if (tenant_limit_ == 0) return nullptr;
  std::weak_ptr<ConnectionShare>& slot = by_tenant_[tenant];
  std::shared_ptr<ConnectionShare> share = slot.lock();
  if (share == nullptr) {
    share = std::make_shared<ConnectionShare>(tenant_limit_);
    slot = share;
  }
  return share;
}

void ConnectionShares::Prune() {
  if (++made_ % 64 != 0) return;
  for (auto* table : {&by_peer_, &by_tenant_}) {
    for (auto it = table->begin(); it != table->end();) {
      it = it->second.expired() ? table->erase(it) : std::next(it);
    }
  }
}

std::shared_ptr<ConnectionShare> ConnectionShares::For(const std::string& peer,
                                                       const std::string& tenant) {
  MutexLock lock(&mu_);
  // One HTTP/2 connection may carry calls of several tenants (tokens are
  // per call): each tenant's calls on it share one share.
  std::weak_ptr<ConnectionShare>& slot = by_peer_[absl::StrCat(peer, "/", tenant)];
  std::shared_ptr<ConnectionShare> share = slot.lock();
  if (share != nullptr) return share;
  share = std::make_shared<ConnectionShare>(limit_, TenantShare(tenant));
  slot = share;
  Prune();
  return share;
}

std::shared_ptr<ConnectionShare> ConnectionShares::ForOne(const std::string& tenant) {
  MutexLock lock(&mu_);
  return std::make_shared<ConnectionShare>(limit_, TenantShare(tenant));
}

}  // namespace kvcache
