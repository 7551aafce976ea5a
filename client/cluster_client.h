// Many kvstored nodes used as one tier. Every block is placed by rendezvous
// hashing of its key (membership/rendezvous.h) on its `replicas` highest-ranked
// nodes and stored there as a root, so a prompt's blocks spread over all
// nodes and bytes balance. A chain's first block (a system prompt every
// request starts with) is put on `root_replicas` nodes, and each lookup and
// fetch reads it from one of them chosen by the chain's next key, so the
// hottest block in the cache is served by all of them, not one. A lookup or
// fetch sends each node its blocks of the chain at once, in parallel (one
// round trip); the cached prefix ends at the first block any node is
// missing.
//
// Replicas: a put writes every replica, in parallel. A read asks each
// block's first replica that is up; when a node fails in transport, its
// blocks are asked again of their next replica within the same call, so a
// node that just died costs one failed attempt, not the rest of every chain
// that passes through it. A chain's first block that its picked root
// replica does not hold (a node that joined lacks the roots until each
// chain's next put from its start) is asked of the next root replica once,
// in the same call: missing it would miss the whole chain.
//
// Membership: a static `peers` list, or etcd (`etcd` endpoints): the client
// reads the members registered under `etcd_prefix` and watches them
// (membership/etcd_members.h), so a node joining or leaving changes the
// placement of only its own share of keys. Each call uses the member list of
// the moment it starts. SetPeers() replaces the list by hand.
//
// Failure: a node whose call fails in transport (UNAVAILABLE, or past the
// deadline) is marked down for every ClusterClient of the process
// (client/node_health.h), and its keys go to their next-highest node. A
// background thread probes down nodes every `probe_interval` (an empty
// Lookup) and marks them up when one answers. A dead node costs misses only;
// calls to it end within the deadline and no error reaches the caller.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_CLIENT_CLUSTER_CLIENT_H_
#define KVCACHE_CLIENT_CLUSTER_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "membership/etcd_members.h"
#include "client/fan_out.h"
#include "client/node_health.h"
#include "membership/rendezvous.h"
#include "common/mutex.h"

namespace kvcache {

struct ClusterOptions {
  std::vector<std::string> peers;  // every node's gRPC address; or, instead:
  std::string etcd;                // etcd endpoints to read and watch members from
  std::string etcd_prefix = "/kvcache/nodes/";
  ChannelSecurity etcd_security;   // TLS and a client certificate for etcd
  ClientOptions node;  // for each node's client; address is set per peer
  absl::Duration probe_interval = absl::Seconds(1);
  // Nodes holding each chain's first block; 0 means every node.
  int root_replicas = 0;
  // Nodes holding every other block (at least 1; capped at the node count).
  int replicas = 2;
};

struct ClusterNodeState {
  std::string address;
  bool up = true;
  uint64_t failures = 0;  // calls that failed in transport
};

class ClusterClient {
 public:
  // INVALID_ARGUMENT for neither or both of peers and etcd, a repeated peer
  // or bad node options; UNAVAILABLE when etcd cannot be read. An etcd
  // prefix with no members yet is fine: every call misses until one joins.
  static absl::StatusOr<std::unique_ptr<ClusterClient>> Create(const ClusterOptions& options);
  ~ClusterClient();

  // How many leading keys of the chain (keys[0] its first block) are cached
  // on their nodes. The status is OK even when nodes are down (their keys
  // are misses).
  LookupResult Lookup(const std::string& ns, absl::Span<const BlockKey> keys);
  // Fetches a chain's leading blocks (targets[0] its first block) from their
  // nodes; `blocks` is the leading run that arrived whole. As Client::Fetch
  // otherwise.
  FetchResult Fetch(const std::string& ns, absl::Span<const FetchTarget> targets);
  // Stores each block on its replicas (as a root); with an empty `parent`,
  // blocks[0] is a chain's first block and goes to every root replica. One
  // outcome per block, the best its replicas answered (stored, then already
  // cached, then the others); PUT_OUTCOME_UNSPECIFIED for a block none of
  // whose replicas could be reached.
  std::vector<v1::PutOutcome> Put(const std::string& ns, const BlockKey& parent,
                                  absl::Span<const PutBlock> blocks);

  // Replaces the member list. Nodes that stay keep their connections and
  // up/down state; repeats are ignored.
  void SetPeers(std::vector<std::string> peers) ABSL_LOCKS_EXCLUDED(members_mu_);

  // The address of the node that owns `key` now (down nodes skipped); empty
  // when no node is up.
  std::string OwnerOf(const BlockKey& key) const;
  // The members, in the order of `peers` (etcd: sorted by address).
  std::vector<ClusterNodeState> nodes() const;
  // The figures of the whole cluster as a worker sees it: chains' lookup
  // keys, hits and misses (kNodeDown when the chain stopped at a block no
  // replica could be asked of), and, summed over the current members' node
  // clients, the other counters and each path's requests, bytes and
  // latency. A node's client made afresh after it came back up starts at 0.
  ClientCounters counters() const;

 private:
  struct Node {
    std::string address;
    std::shared_ptr<NodeHealth> health;  // shared in the process
    mutable Mutex mu;
    // Replaced by a fresh one when the node comes back up (by any client's
    // prober), so calls never wait out gRPC's reconnect backoff on the old
    // channels.
    std::shared_ptr<Client> client ABSL_GUARDED_BY(mu);
    uint64_t client_generation ABSL_GUARDED_BY(mu) = 0;  // of health, when made
  };

  // One member list and its placement; replaced whole, never changed.
  struct Members {
    std::vector<std::shared_ptr<Node>> nodes;
    Rendezvous placement;
    // Which nodes calls may use now (the up ones).
    std::vector<bool> Usable() const;
  };

  explicit ClusterClient(const ClusterOptions& options);
  absl::Status Start();
  // The member list for `peers`, reusing the current list's nodes by
  // address. A peer whose client cannot be made is left out with
  // `skip_bad`, and is the error otherwise.
  absl::StatusOr<std::shared_ptr<const Members>> BuildMembers(const std::vector<std::string>& peers,
                                                              bool skip_bad) const;
  std::shared_ptr<const Members> members() const ABSL_LOCKS_EXCLUDED(members_mu_);
  // The prober's loop: an empty Lookup to every down node per interval.
  void ProbeLoop() ABSL_LOCKS_EXCLUDED(probe_mu_);
  // The node's client, made afresh if the node came back up since.
  std::shared_ptr<Client> ClientOf(Node& node) const;
  // Records how a call to `node` went: transport failures mark it down.
  static void Report(Node& node, const absl::Status& status);
  // The nodes that hold key(i) of a chain, best first, up ones only: its
  // `replicas` highest; for position 0, the chain's root replicas, starting
  // at one picked by key(1) (or in turn, for a call of one block).
  template <typename KeyOf>
  std::vector<std::vector<size_t>> Candidates(const Members& m, size_t count, KeyOf key_of);
  // Reads a chain from its nodes: call(n, positions) asks node n about those
  // chain positions (ascending) and returns how many leading ones it holds,
  // or nullopt when the node failed in transport; then those positions are
  // asked of their next replica, in the same call. Returns the chain's
  // prefix: positions [0, prefix) were all held; *why says why it ended
  // there (a node's answer, or no replica left to ask). `call` runs on
  // several threads at once, never twice at once for one node.
  template <typename KeyOf, typename Call>
  size_t ReadChain(const Members& m, size_t count, KeyOf key_of, Call call, ClientMiss* why);
  size_t root_replicas(const Members& m) const;
  size_t replicas(const Members& m) const;
  // Runs fn(node) for every node with a non-empty group, in parallel.
  template <typename Fn>
  void ForEachGroup(const std::vector<std::vector<size_t>>& groups, Fn fn);

  const ClusterOptions options_;
  mutable Mutex members_mu_;
  std::shared_ptr<const Members> members_ ABSL_GUARDED_BY(members_mu_);
  FanOut fan_out_;
  // Picks the first block's replica for calls of one block (a prompt whose
  // cached prefix is only its first block fetches just that): round-robin,
  // so the hottest block in the cache is not fetched from one node. Longer
  // calls pick by the chain's second key, so a prompt's lookup and fetch go
  // to the same replica.
  std::atomic<uint64_t> next_spread_{0};
  ClientMetrics chain_metrics_;  // lookups and fetches of whole chains
  std::unique_ptr<EtcdMembers> etcd_members_;  // set when members come from etcd
  Mutex probe_mu_;
  CondVar probe_wake_;
  bool stopping_ ABSL_GUARDED_BY(probe_mu_) = false;
  std::thread prober_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_CLUSTER_CLIENT_H_
