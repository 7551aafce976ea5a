// Keeps a cluster's copies whole after its membership changes. Clients
// (ClusterClient) store each block on its `replicas` highest-ranked nodes;
// when a node dies, the blocks it held have one copy fewer, and when a node
// joins it ranks first for some blocks it does not hold. After each change
// of the member list (the etcd watch), this daemon walks the blocks it holds
// and, for each node that now ranks among a block's `replicas` and lacks it,
// copies it there: a lost copy is restored, a new node warms up instead of
// missing. Copies go out at a bounded rate, and progress shows in Stats.
//
// Blocks held only on NVMe or the GPU are read from there for the copy
// (BlockStore::CopyOut), without promoting them or counting a hit.
//
// What is not repaired: a chain's first block, which clients keep on every
// node, gets `replicas` copies here (a reader that misses it on a node asks
// the next root replica, and the next put of a chain from its start stores it
// on every node again). Every node that holds a block
// checks it, so two holders may both send a copy; the second finds it there
// (checked with a one-key Lookup first) or is answered ALREADY_CACHED.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_REPAIR_REPLICA_REPAIRER_H_
#define KVCACHE_REPAIR_REPLICA_REPAIRER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "common/mutex.h"
#include "kvstore/server/service_context.h"
#include "kvstore/store/block_store.h"

namespace kvcache {

class ReplicaRepairer : public StatsLine {
 public:
  struct Options {
    std::string self;  // this daemon's address as the members list it
    int replicas = 2;
    uint64_t bytes_per_second = 64ull << 20;
    // For the clients to the other nodes. Every tenant's blocks are
    // repaired, each in its own tenant (ChannelSecurity::act_for_tenant):
    // with authentication on, `node.security` must carry an admin token or
    // certificate.
    ClientOptions node;
    // A pass starts this long after the last change: a burst of changes
    // (a rolling restart) costs one pass.
    absl::Duration settle = absl::Seconds(1);
  };

  struct Progress {
    uint64_t passes = 0;        // finished
    uint64_t checked = 0;       // (block, node) pairs asked about
    uint64_t copied = 0;        // blocks copied to a node that lacked them
    uint64_t copied_bytes = 0;
    uint64_t failed = 0;        // copies or checks that failed
    bool running = false;       // a pass is under way
  };

  // `store` is not owned and outlives this.
  ReplicaRepairer(BlockStore& store, const Options& options);
  ~ReplicaRepairer() override;  // stops a pass in progress
  ReplicaRepairer(const ReplicaRepairer&) = delete;
  ReplicaRepairer& operator=(const ReplicaRepairer&) = delete;

  // The cluster's members now (addresses, this one included); a pass
  // follows after `settle`.
  void SetMembers(std::vector<std::string> members) ABSL_LOCKS_EXCLUDED(mu_);

  Progress progress() const;
  // One line for Stats and kvctl: passes, copies, bytes, whether running.
  std::string Describe() const override;

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  // One walk over every block this daemon holds. False if stopped. Members
  // that do not answer are skipped for the rest of the pass (a member that
  // died is dropped from the list within its lease).
  bool Pass(const std::vector<std::string>& members) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends one block to `peer` unless it holds it already. False if the
  // peer did not answer (it is asked nothing more this pass).
  bool Repair(Client& peer, NamespaceId ns, const std::string& ns_name, const BlockKey& key);
  // The client to `address` acting in `tenant`; null if it cannot be made.
  Client* ClientFor(const std::string& address, const std::string& tenant);
  bool Stopping() ABSL_LOCKS_EXCLUDED(mu_);

  BlockStore& store_;
  const Options options_;
  // By (address, tenant); the loop's thread only.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Client>> clients_;
  double budget_bytes_ = 0;                                  // the loop's thread only
  absl::Time budget_at_;                                     // the loop's thread only
  std::atomic<uint64_t> passes_{0}, checked_{0}, copied_{0}, copied_bytes_{0}, failed_{0};
  std::atomic<bool> running_{false};
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> members_ ABSL_GUARDED_BY(mu_);
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // member lists received
  absl::Time changed_at_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_REPAIR_REPLICA_REPAIRER_H_
