#include "client/cluster_client.h"

#include <algorithm>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "xxhash.h"

namespace kvcache {
namespace {

// In a Put's groups: a further copy of blocks[0] for a root replica.
constexpr size_t kReplica = SIZE_MAX - 1;

// Picks among a first block's replicas.
uint64_t Spread(const BlockKey& key) { return XXH3_64bits(key.data(), key.size()); }

bool TransportFailed(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterClient>> ClusterClient::Create(
    const ClusterOptions& options) {
  if (options.peers.empty() == options.etcd.empty()) {
    return absl::InvalidArgumentError("cluster: give either peers or etcd endpoints");
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& peer : options.peers) {
    if (!seen.insert(peer).second) {
      return absl::InvalidArgumentError("cluster: peer " + peer + " is listed twice");
    }
  }
  std::unique_ptr<ClusterClient> cluster(new ClusterClient(options));
  if (absl::Status s = cluster->Start(); !s.ok()) return s;
  return cluster;
}

ClusterClient::ClusterClient(const ClusterOptions& options)
    : options_(options), members_(std::make_shared<Members>(Members{{}, Rendezvous({})})) {}

absl::Status ClusterClient::Start() {
  if (!options_.etcd.empty()) {
    EtcdMembersOptions watch;
    watch.etcd = options_.etcd;
    watch.prefix = options_.etcd_prefix;
    absl::StatusOr<std::unique_ptr<EtcdMembers>> m = EtcdMembers::Create(
        watch, [this](const std::vector<std::string>& members) { SetPeers(members); });
    if (!m.ok()) return m.status();
    etcd_members_ = std::move(*m);
  } else {
    // Static peers must all be valid; a bad one is the caller's error.
    absl::StatusOr<std::shared_ptr<const Members>> m = BuildMembers(options_.peers, false);
    if (!m.ok()) return m.status();
    MutexLock lock(&members_mu_);
    members_ = std::move(*m);
  }
  prober_ = std::thread([this] { ProbeLoop(); });
  return absl::OkStatus();
}

ClusterClient::~ClusterClient() {
  etcd_members_.reset();  // no SetPeers after this
  {
    MutexLock lock(&probe_mu_);
    stopping_ = true;
  }
  probe_wake_.SignalAll();
  if (prober_.joinable()) prober_.join();
}

void ClusterClient::SetPeers(std::vector<std::string> peers) {
  absl::StatusOr<std::shared_ptr<const Members>> next = BuildMembers(peers, true);
  MutexLock lock(&members_mu_);
  members_ = std::move(*next);  // with skip_bad, never an error
}

absl::StatusOr<std::shared_ptr<const ClusterClient::Members>> ClusterClient::BuildMembers(
    const std::vector<std::string>& peers, bool skip_bad) const {
  const std::shared_ptr<const Members> old = members();
  absl::flat_hash_set<std::string> seen;
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<std::string> addresses;
  for (const std::string& peer : peers) {
    if (!seen.insert(peer).second) continue;
    std::shared_ptr<Node> node;
    for (const auto& n : old->nodes) {
      if (n->address == peer) node = n;
    }
    if (node == nullptr) {
      ClientOptions node_options = options_.node;
      node_options.address = peer;
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(node_options);
      if (!client.ok()) {
        if (skip_bad) continue;  // a bad address from etcd: leave it out
        return client.status();
      }
      node = std::make_shared<Node>();
      node->address = peer;
      MutexLock lock(&node->mu);
      node->client = std::move(*client);
    }
    nodes.push_back(std::move(node));
    addresses.push_back(peer);
  }
  return std::make_shared<const Members>(Members{std::move(nodes), Rendezvous(addresses)});
}

std::shared_ptr<const ClusterClient::Members> ClusterClient::members() const {
  MutexLock lock(&members_mu_);
  return members_;
}

std::vector<bool> ClusterClient::Members::Usable() const {
  std::vector<bool> usable(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    MutexLock lock(&nodes[i]->mu);
    usable[i] = nodes[i]->up;
  }
  return usable;
}

void ClusterClient::ProbeLoop() {
  while (true) {
    {
      MutexLock lock(&probe_mu_);
      if (stopping_) return;
      probe_wake_.WaitFor(&probe_mu_, absl::ToChronoNanoseconds(options_.probe_interval));
      if (stopping_) return;
    }
    const std::shared_ptr<const Members> m = members();
    const std::vector<bool> up = m->Usable();
    for (size_t i = 0; i < m->nodes.size(); ++i) {
      if (up[i]) continue;
      Node& n = *m->nodes[i];
      // A fresh client: the old one's channels may sit in reconnect backoff.
      ClientOptions probe_options = options_.node;
      probe_options.address = n.address;
      absl::StatusOr<std::unique_ptr<Client>> fresh = Client::Create(probe_options);
      if (!fresh.ok()) continue;
      LookupResult r = (*fresh)->Lookup("kvcache-probe", {});
      if (!r.status.ok()) continue;
      MutexLock lock(&n.mu);
      n.client = std::move(*fresh);
      n.up = true;
    }
  }
}

std::shared_ptr<Client> ClusterClient::ClientOf(const Node& node) {
  MutexLock lock(&node.mu);
  return node.client;
}

void ClusterClient::Report(Node& n, const absl::Status& status) {
  const bool failed = TransportFailed(status);
  if (failed) n.failures.fetch_add(1, std::memory_order_relaxed);
  MutexLock lock(&n.mu);
  if (failed) n.up = false;  // only the prober marks a node up again
}

size_t ClusterClient::root_replicas(const Members& m) const {
  const size_t r = static_cast<size_t>(options_.root_replicas);
  return r == 0 ? m.nodes.size() : std::min(r, m.nodes.size());
}

template <typename KeyOf>
std::vector<std::vector<size_t>> ClusterClient::GroupByOwner(const Members& m, size_t count,
                                                             KeyOf key_of, bool from_root) {
  const std::vector<bool> usable = m.Usable();
  // The chain's next key picks the replica of its first block, so one
  // prompt's lookup and fetch go to the same one.
  const uint64_t spread = !from_root  ? 0
                          : count > 1 ? Spread(key_of(1))
                                      : next_spread_.fetch_add(1, std::memory_order_relaxed);
  std::vector<std::vector<size_t>> groups(m.nodes.size());
  for (size_t i = 0; i < count; ++i) {
    size_t owner = SIZE_MAX;
    if (i == 0 && from_root) {
      const std::vector<size_t> replicas = m.placement.Ranked(key_of(0), root_replicas(m), usable);
      if (!replicas.empty()) owner = replicas[spread % replicas.size()];
    } else {
      owner = m.placement.Owner(key_of(i), usable);
    }
    if (owner == SIZE_MAX) break;  // no node usable: the rest are misses
    groups[owner].push_back(i);
  }
  return groups;
}

size_t ClusterClient::ChainPrefix(const std::vector<std::vector<size_t>>& groups,
                                  const std::vector<size_t>& first_miss) {
  size_t prefix = 0;
  for (const auto& g : groups) prefix += g.size();
  for (size_t f : first_miss) prefix = std::min(prefix, f);
  return prefix;
}

template <typename Fn>
void ClusterClient::ForEachGroup(const std::vector<std::vector<size_t>>& groups, Fn fn) {
  std::vector<size_t> busy;
  for (size_t n = 0; n < groups.size(); ++n) {
    if (!groups[n].empty()) busy.push_back(n);
  }
  fan_out_.Run(busy.size(), [&](size_t i) { fn(busy[i]); });
}

LookupResult ClusterClient::Lookup(const std::string& ns, absl::Span<const BlockKey> keys) {
  const std::shared_ptr<const Members> m = members();
  auto groups = GroupByOwner(
      *m, keys.size(), [&](size_t i) { return keys[i]; }, /*from_root=*/true);
  const size_t count = m->nodes.size();
  // Per node: the chain position of its first miss (keys.size() if none).
  std::vector<size_t> first_miss(count, keys.size());
  std::vector<LookupResult> results(count);
  ForEachGroup(groups, [&](size_t n) {
    std::vector<BlockKey> subset;
    for (size_t i : groups[n]) subset.push_back(keys[i]);
    results[n] = ClientOf(*m->nodes[n])->Lookup(ns, subset);
    Report(*m->nodes[n], results[n].status);
    const size_t hits = results[n].status.ok() ? results[n].hits : 0;
    if (hits < groups[n].size()) first_miss[n] = groups[n][hits];
  });
  LookupResult result;
  result.hits = ChainPrefix(groups, first_miss);
  result.sizes.resize(result.hits);
  result.tiers.resize(result.hits, v1::TIER_UNSPECIFIED);
  for (size_t n = 0; n < count; ++n) {
    for (size_t j = 0; j < groups[n].size() && groups[n][j] < result.hits; ++j) {
      result.sizes[groups[n][j]] = results[n].sizes[j];
      if (j < results[n].tiers.size()) result.tiers[groups[n][j]] = results[n].tiers[j];
    }
  }
  return result;
}

FetchResult ClusterClient::Fetch(const std::string& ns, absl::Span<const FetchTarget> targets) {
  const std::shared_ptr<const Members> m = members();
  auto groups = GroupByOwner(
      *m, targets.size(), [&](size_t i) { return targets[i].key; }, /*from_root=*/true);
  const size_t count = m->nodes.size();
  std::vector<size_t> first_missing(count, targets.size());
  std::vector<FetchResult> results(count);
  ForEachGroup(groups, [&](size_t n) {
    std::vector<FetchTarget> subset;
    for (size_t i : groups[n]) subset.push_back(targets[i]);
    results[n] = ClientOf(*m->nodes[n])->Fetch(ns, subset);
    Report(*m->nodes[n], results[n].status);
    if (results[n].blocks < groups[n].size()) first_missing[n] = groups[n][results[n].blocks];
  });
  FetchResult result;
  result.blocks = ChainPrefix(groups, first_missing);
  result.tiers.assign(result.blocks, v1::TIER_UNSPECIFIED);
  for (size_t n = 0; n < count; ++n) {
    for (size_t j = 0; j < groups[n].size() && groups[n][j] < result.blocks; ++j) {
      if (j < results[n].tiers.size()) result.tiers[groups[n][j]] = results[n].tiers[j];
    }
    // A node's real error (not a miss or a dead node) is the caller's to see.
    const absl::Status& s = results[n].status;
    if (!s.ok() && !TransportFailed(s) && s.code() != absl::StatusCode::kNotFound &&
        result.status.ok()) {
      result.status = s;
    }
  }
  return result;
}

std::vector<v1::PutOutcome> ClusterClient::Put(const std::string& ns, const BlockKey& parent,
                                               absl::Span<const PutBlock> blocks) {
  const std::shared_ptr<const Members> m = members();
  auto groups = GroupByOwner(
      *m, blocks.size(), [&](size_t i) { return blocks[i].key; }, /*from_root=*/false);
  std::vector<v1::PutOutcome> outcomes(blocks.size(), v1::PUT_OUTCOME_UNSPECIFIED);
  if (parent.empty() && !blocks.empty()) {
    // A chain's first block: every replica but the owner gets it too.
    const std::vector<size_t> replicas =
        m->placement.Ranked(blocks[0].key, root_replicas(*m), m->Usable());
    for (size_t r : replicas) {
      if (std::find(groups[r].begin(), groups[r].end(), 0) == groups[r].end()) {
        groups[r].insert(groups[r].begin(), kReplica);
      }
    }
  }
  ForEachGroup(groups, [&](size_t n) {
    std::vector<PutBlock> subset;
    for (size_t i : groups[n]) {
      subset.push_back(blocks[i == kReplica ? 0 : i]);
      subset.back().root = true;  // its parent may live on another node
    }
    absl::StatusOr<std::vector<v1::PutOutcome>> got =
        ClientOf(*m->nodes[n])->Put(ns, BlockKey(), subset);
    Report(*m->nodes[n], got.status());
    if (!got.ok()) return;
    for (size_t j = 0; j < got->size() && j < groups[n].size(); ++j) {
      if (groups[n][j] != kReplica) outcomes[groups[n][j]] = (*got)[j];
    }
  });
  return outcomes;
}

std::string ClusterClient::OwnerOf(const BlockKey& key) const {
  const std::shared_ptr<const Members> m = members();
  const size_t owner = m->placement.Owner(key, m->Usable());
  return owner == SIZE_MAX ? std::string() : m->nodes[owner]->address;
}

std::vector<ClusterNodeState> ClusterClient::nodes() const {
  const std::shared_ptr<const Members> m = members();
  std::vector<ClusterNodeState> out;
  for (const auto& n : m->nodes) {
    MutexLock lock(&n->mu);
    out.push_back({n->address, n->up, n->failures.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace kvcache
