#include "kvstore/store/connection_share.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status ConnectionShare::Charge(uint64_t bytes, const char* what) {
  uint64_t held = held_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ || held > limit_ - bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this connection already holds ", held, " bytes staged or pinned; ", bytes, " more ",
          what, " would pass its share of the host arena, ", limit_,
          " bytes (--connection_share)"));
    }
  } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return absl::OkStatus();
}

std::shared_ptr<ConnectionShare> ConnectionShares::For(const std::string& peer) {
  MutexLock lock(&mu_);
  std::weak_ptr<ConnectionShare>& slot = by_peer_[peer];
  std::shared_ptr<ConnectionShare> share = slot.lock();
  if (share != nullptr) return share;
  share = std::make_shared<ConnectionShare>(limit_);
  slot = share;
  // Forget connections no stream holds any more, every 64 new shares: the
  // table stays about as large as the live connections.
  if (++made_ % 64 == 0) {
    for (auto it = by_peer_.begin(); it != by_peer_.end();) {
      it = it->second.expired() ? by_peer_.erase(it) : std::next(it);
    }
  }
  return share;
}

}  // namespace kvcache
