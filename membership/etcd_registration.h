// Keeps one kvstored registered as a cluster member in etcd: the key
// `prefix + address` (value: the address) is attached to a lease of `ttl`,
// renewed every ttl/3. If the daemon dies the lease expires and etcd deletes
// the key, so clients watching the prefix drop the node within `ttl`; a clean
// shutdown revokes the lease and the key goes at once. If etcd is down or
// loses the lease, registration is retried every `retry_interval` and the
// daemon keeps serving meanwhile.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_MEMBERSHIP_ETCD_REGISTRATION_H_
#define KVCACHE_MEMBERSHIP_ETCD_REGISTRATION_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "membership/etcd_client.h"
#include "common/mutex.h"

namespace kvcache {

struct EtcdRegistrationOptions {
  std::string etcd;  // endpoints, as EtcdClient::Create takes
  ChannelSecurity etcd_security;  // TLS and a client certificate for etcd
  std::string prefix = "/kvcache/nodes/";
  std::string address;                    // what clients dial: host:port
  absl::Duration ttl = absl::Seconds(5);  // etcd's minimum is about 2 s
  absl::Duration retry_interval = absl::Seconds(1);
};

class EtcdRegistration {
 public:
  // Starts registering in the background; the first attempt is made before
  // this returns, and a failed one is retried (see registered()).
  // INVALID_ARGUMENT for an empty etcd, prefix or address, or a ttl < 1 s.
  static absl::StatusOr<std::unique_ptr<EtcdRegistration>> Create(
      const EtcdRegistrationOptions& options);
  // Leaves (see Leave()) if still registered.
  ~EtcdRegistration();

  // Stops renewing and revokes the lease, so the member disappears now
  // rather than after ttl. The object stays usable (registered() is false).
  void Leave() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& key() const { return key_; }
  // One line for Stats: where, as what, and whether registered (or why not).
  std::string Describe() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the key is in etcd as far as the last renewal knows, and the last
  // error otherwise.
  bool registered() const;
  std::string last_error() const;

 private:
  EtcdRegistration(const EtcdRegistrationOptions& options, std::unique_ptr<EtcdClient> etcd);
  // Grants a lease and writes the key under it.
  absl::Status Register();
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  void SetState(int64_t lease, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  const EtcdRegistrationOptions options_;
  const std::string key_;
  std::unique_ptr<EtcdClient> etcd_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool left_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not registered
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_MEMBERSHIP_ETCD_REGISTRATION_H_
