// Follows the cluster's member list in etcd: every key under a prefix is one
// member, its value the member's address (as EtcdRegistration writes it).
// Reads the list once, then watches the prefix from the revision it read, so
// no change between the two is missed. If the watch breaks (etcd restarts,
// or compacts past our revision) it reads the list afresh and watches again
// every `retry_interval` until that works; meanwhile the last list known
// stays in force, so an etcd outage changes no placement.
//
// Thread safety: all methods may be called from any thread. `on_change` runs
// on the watch thread, never two at a time.
#ifndef KVCACHE_MEMBERSHIP_ETCD_MEMBERS_H_
#define KVCACHE_MEMBERSHIP_ETCD_MEMBERS_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "membership/etcd_client.h"
#include "common/mutex.h"

namespace kvcache {

struct EtcdMembersOptions {
  std::string etcd;  // endpoints, as EtcdClient::Create takes
  ChannelSecurity etcd_security;  // TLS and a client certificate for etcd
  std::string prefix = "/kvcache/nodes/";
  absl::Duration timeout = absl::Seconds(2);  // for the initial read
  absl::Duration retry_interval = absl::Seconds(1);
};

class EtcdMembers {
 public:
  // The member addresses, sorted, with no repeats.
  using OnChange = std::function<void(const std::vector<std::string>& members)>;

  // Reads the member list (UNAVAILABLE if etcd does not answer within the
  // timeout), calls on_change with it once, then follows changes.
  static absl::StatusOr<std::unique_ptr<EtcdMembers>> Create(const EtcdMembersOptions& options,
                                                             OnChange on_change);
  ~EtcdMembers();

  std::vector<std::string> members() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  EtcdMembers(const EtcdMembersOptions& options, std::unique_ptr<EtcdClient> etcd,
              OnChange on_change);
  // Replaces the list with what etcd holds now; returns the revision read.
  absl::StatusOr<int64_t> Resync();
  // Watches from `revision` + 1 until the stream ends.
  void WatchFrom(int64_t revision) ABSL_LOCKS_EXCLUDED(mu_);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Calls on_change_ if the member set differs from the last one reported.
  void Publish() ABSL_LOCKS_EXCLUDED(mu_);

  const EtcdMembersOptions options_;
  std::unique_ptr<EtcdClient> etcd_;
  const OnChange on_change_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* watch_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;          // to cancel it
  absl::btree_map<std::string, std::string> by_key_ ABSL_GUARDED_BY(mu_);  // key -> address
  std::vector<std::string> published_;  // only the watch thread (and Create) touch it
  std::thread thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_MEMBERSHIP_ETCD_MEMBERS_H_
