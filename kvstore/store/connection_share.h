// What one client connection may hold of the host arena at once: the pages
// its unfinished puts have staged and the blocks its unfinished fetches and
// leases pin. Without a bound, one client could stage or pin the whole arena
// and every other client's puts would find no room. A gRPC connection's
// streams share one (ConnectionShares, keyed by the peer address); a data
// port or same-host connection has its own.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_STORE_CONNECTION_SHARE_H_
#define KVCACHE_KVSTORE_STORE_CONNECTION_SHARE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/mutex.h"

namespace kvcache {

class ConnectionShare {
 public:
  // `tenant` (may be null) is the share all of one tenant's connections
  // hold together: a charge must fit both.
  explicit ConnectionShare(uint64_t limit_bytes, std::shared_ptr<ConnectionShare> tenant = nullptr)
      : limit_(limit_bytes), tenant_(std::move(tenant)) {}

  // Adds `bytes` to what the connection (and its tenant) holds.
  // RESOURCE_EXHAUSTED (nothing added) if that would pass either limit;
  // `what` names the holding ("staged", "pinned") in the message.
  absl::Status Charge(uint64_t bytes, const char* what);
  // Gives back bytes charged earlier.
  void Release(uint64_t bytes) {
    held_.fetch_sub(bytes, std::memory_order_relaxed);
    if (tenant_ != nullptr) tenant_->Release(bytes);
  }

  uint64_t held() const { return held_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  // Adds to held_ alone; `who` and `flag` name it in the message.
  absl::Status ChargeOwn(uint64_t bytes, const char* what, const char* who, const char* flag);

  const uint64_t limit_;
  const std::shared_ptr<ConnectionShare> tenant_;
  std::atomic<uint64_t> held_{0};
};

// Bytes charged to a share, given back when this is destroyed. Move-only.
class ShareCharge {
 public:
  ShareCharge() = default;
  ShareCharge(std::shared_ptr<ConnectionShare> share, uint64_t bytes)
      : share_(std::move(share)), bytes_(bytes) {}
  ShareCharge(ShareCharge&& other) noexcept
      : share_(std::move(other.share_)), bytes_(other.bytes_) {
    other.bytes_ = 0;
  }
  ShareCharge& operator=(ShareCharge&& other) noexcept {
    if (this != &other) {
      Reset();
      share_ = std::move(other.share_);
      bytes_ = other.bytes_;
      other.bytes_ = 0;
    }
    return *this;
  }
  ~ShareCharge() { Reset(); }

  void Reset() {
    if (share_ != nullptr && bytes_ > 0) share_->Release(bytes_);
    share_.reset();
    bytes_ = 0;
  }

 private:
  std::shared_ptr<ConnectionShare> share_;
  uint64_t bytes_ = 0;
};

// The shares of live gRPC connections, by peer address (one HTTP/2
// connection's streams all report its address). A share lives while a
// stream holds it.
class ConnectionShares {
 public:
  // `tenant_limit_bytes`: what all of one tenant's connections may hold
  // together (kvstored --tenant_share); 0: no such bound.
  explicit ConnectionShares(uint64_t limit_bytes, uint64_t tenant_limit_bytes = 0)
      : limit_(limit_bytes), tenant_limit_(tenant_limit_bytes) {}

  // The share of `peer`'s connection for `tenant`'s calls, made on first use.
  std::shared_ptr<ConnectionShare> For(const std::string& peer, const std::string& tenant)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A share for a connection that is not shared (data port, same host).
  std::shared_ptr<ConnectionShare> ForOne(const std::string& tenant) ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t limit() const { return limit_; }

 private:
  // The share `tenant`'s connections hold together; null without a bound.
  std::shared_ptr<ConnectionShare> TenantShare(const std::string& tenant)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets shares no one holds any more, every 64 new ones.
  void Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t limit_;
  const uint64_t tenant_limit_;
  Mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<ConnectionShare>> by_peer_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::weak_ptr<ConnectionShare>> by_tenant_
      ABSL_GUARDED_BY(mu_);
  uint64_t made_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_STORE_CONNECTION_SHARE_H_
