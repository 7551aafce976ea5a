#include "client/cluster_client.h"

#include <algorithm>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "xxhash.h"

namespace kvcache {
namespace {

// Picks among a first block's replicas.
uint64_t Spread(const BlockKey& key) { return XXH3_64bits(key.data(), key.size()); }

// Whether a chain's first block has a replica other than `n` not known
// to have failed.
bool HasOtherRoot(const std::vector<size_t>& roots, size_t n, const std::vector<char>& failed) {
  return std::any_of(roots.begin(), roots.end(), [&](size_t r) { return r != n && !failed[r]; });
}

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
    watch.etcd_security = options_.etcd_security;
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
      node->health = NodeHealth::Of(peer);
      MutexLock lock(&node->mu);
      node->client = std::move(*client);
      node->client_generation = node->health->generation();
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
  for (size_t i = 0; i < nodes.size(); ++i) usable[i] = nodes[i]->health->up();
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
      n.client_generation = n.health->Answered();
    }
  }
}

std::shared_ptr<Client> ClusterClient::ClientOf(Node& node) const {
  MutexLock lock(&node.mu);
  const uint64_t generation = node.health->generation();
  if (node.client_generation != generation) {
    // Another client's prober brought it back; our channels may still be
    // in reconnect backoff.
    ClientOptions options = options_.node;
    options.address = node.address;
    if (absl::StatusOr<std::unique_ptr<Client>> fresh = Client::Create(options); fresh.ok()) {
      node.client = std::move(*fresh);
    }
    node.client_generation = generation;
  }
  return node.client;
}

void ClusterClient::Report(Node& n, const absl::Status& status) {
  // Only a prober marks a node up again.
  if (TransportFailed(status)) n.health->Failed();
}

size_t ClusterClient::root_replicas(const Members& m) const {
  const size_t r = static_cast<size_t>(options_.root_replicas);
  return r == 0 ? m.nodes.size() : std::min(r, m.nodes.size());
}

size_t ClusterClient::replicas(const Members& m) const {
  return std::min(static_cast<size_t>(std::max(options_.replicas, 1)), m.nodes.size());
}

template <typename KeyOf>
std::vector<std::vector<size_t>> ClusterClient::Candidates(const Members& m, size_t count,
                                                           KeyOf key_of) {
  const std::vector<bool> usable = m.Usable();
  std::vector<std::vector<size_t>> candidates(count);
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) {
      candidates[i] = m.placement.Ranked(key_of(i), replicas(m), usable);
      continue;
    }
    // The chain's next key picks the first block's replica, so one prompt's
    // lookup and fetch go to the same one; the others follow as fallbacks.
    std::vector<size_t> roots =
        m.placement.Ranked(key_of(0), std::max(root_replicas(m), replicas(m)), usable);
    if (roots.empty()) continue;
    const uint64_t spread =
        count > 1 ? Spread(key_of(1)) : next_spread_.fetch_add(1, std::memory_order_relaxed);
    std::rotate(roots.begin(), roots.begin() + spread % std::min(roots.size(), root_replicas(m)),
                roots.end());
    candidates[0] = std::move(roots);
  }
  return candidates;
}

template <typename KeyOf, typename Call>
size_t ClusterClient::ReadChain(const Members& m, size_t count, KeyOf key_of, Call call,
                                ClientMiss* why) {
  const std::vector<std::vector<size_t>> candidates = Candidates(m, count, key_of);
  std::vector<char> failed(m.nodes.size(), 0);  // in transport, during this call
  // Nodes found without the chain's first block. Every node should hold it,
  // but one that joined lacks the roots until each chain's next put from
  // its start, and pressure may have evicted it on one: it is asked of the
  // next root replica once, since missing it misses the whole chain.
  std::vector<char> root_missing(m.nodes.size(), 0);
  bool root_retried = false;
  std::vector<char> held(count, 0);  // char, not bool: set from several threads
  size_t limit = count;  // the first position a node answered is missing
  std::vector<size_t> pending(count);
  for (size_t i = 0; i < count; ++i) pending[i] = i;
  while (!pending.empty()) {
    std::vector<std::vector<size_t>> groups(m.nodes.size());
    for (size_t i : pending) {
      if (i >= limit) break;  // past a known miss: the chain ends before it anyway
      for (size_t n : candidates[i]) {
        if (failed[n] || (i == 0 && root_missing[n])) continue;
        groups[n].push_back(i);
        break;
      }  // no replica left: a miss
    }
    std::vector<char> call_failed(m.nodes.size(), 0);
    std::vector<size_t> first_miss(m.nodes.size(), count);
    ForEachGroup(groups, [&](size_t n) {
      const std::optional<size_t> hits = call(n, groups[n]);
      if (!hits.has_value()) {
        call_failed[n] = 1;
        return;
      }
      for (size_t j = 0; j < *hits && j < groups[n].size(); ++j) held[groups[n][j]] = 1;
      if (*hits < groups[n].size()) first_miss[n] = groups[n][*hits];
    });
    pending.clear();
    for (size_t n = 0; n < m.nodes.size(); ++n) {
      if (first_miss[n] == 0 && !root_retried && HasOtherRoot(candidates[0], n, failed)) {
        // Its answer hid the rest of its positions too: all are asked again.
        root_retried = true;
        root_missing[n] = 1;
        pending.insert(pending.end(), groups[n].begin(), groups[n].end());
        continue;
      }
      limit = std::min(limit, first_miss[n]);
      if (!call_failed[n]) continue;
      failed[n] = 1;
      pending.insert(pending.end(), groups[n].begin(), groups[n].end());
    }
    std::sort(pending.begin(), pending.end());
  }
  size_t prefix = 0;
  while (prefix < count && held[prefix]) ++prefix;
  // Before the first miss a node answered, a block not held is one no
  // replica could be asked of.
  *why = prefix < limit ? ClientMiss::kNodeDown : ClientMiss::kNotCached;
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
  std::vector<uint64_t> sizes(keys.size(), 0);
  std::vector<v1::Tier> tiers(keys.size(), v1::TIER_UNSPECIFIED);
  LookupResult result;
  ClientMiss why = ClientMiss::kNotCached;
  result.hits = ReadChain(
      *m, keys.size(), [&](size_t i) { return keys[i]; },
      [&](size_t n, const std::vector<size_t>& positions) -> std::optional<size_t> {
        std::vector<BlockKey> subset;
        for (size_t i : positions) subset.push_back(keys[i]);
        const LookupResult got = ClientOf(*m->nodes[n])->Lookup(ns, subset);
        Report(*m->nodes[n], got.status);
        if (TransportFailed(got.status)) return std::nullopt;
        const size_t hits = got.status.ok() ? got.hits : 0;
        for (size_t j = 0; j < hits; ++j) {
          sizes[positions[j]] = got.sizes[j];
          if (j < got.tiers.size()) tiers[positions[j]] = got.tiers[j];
        }
        return hits;
      },
      &why);
  result.sizes.assign(sizes.begin(), sizes.begin() + result.hits);
  result.tiers.assign(tiers.begin(), tiers.begin() + result.hits);
  chain_metrics_.CountLookup(keys.size(), result.hits, why);
  return result;
}

FetchResult ClusterClient::Fetch(const std::string& ns, absl::Span<const FetchTarget> targets) {
  const std::shared_ptr<const Members> m = members();
  std::vector<v1::Tier> tiers(targets.size(), v1::TIER_UNSPECIFIED);
  Mutex error_mu;
  absl::Status error;
  FetchResult result;
  ClientMiss why = ClientMiss::kNotCached;
  result.blocks = ReadChain(
      *m, targets.size(), [&](size_t i) { return targets[i].key; },
      [&](size_t n, const std::vector<size_t>& positions) -> std::optional<size_t> {
        std::vector<FetchTarget> subset;
        for (size_t i : positions) subset.push_back(targets[i]);
        const FetchResult got = ClientOf(*m->nodes[n])->Fetch(ns, subset);
        Report(*m->nodes[n], got.status);
        // A node that failed in transport is asked nothing more: all of its
        // blocks go to their next replica (which rewrites any that arrived).
        if (TransportFailed(got.status)) return std::nullopt;
        for (size_t j = 0; j < got.blocks && j < got.tiers.size(); ++j) {
          tiers[positions[j]] = got.tiers[j];
        }
        // A node's real error (not a miss or a dead node) is the caller's to see.
        const absl::Status& s = got.status;
        if (!s.ok() && !TransportFailed(s) && s.code() != absl::StatusCode::kNotFound) {
          MutexLock lock(&error_mu);
          if (error.ok()) error = s;
        }
        return got.blocks;
      },
      &why);
  result.tiers.assign(tiers.begin(), tiers.begin() + result.blocks);
  result.status = error;
  if (result.blocks < targets.size()) {
    chain_metrics_.CountFetchMiss(error.ok() ? why : MissOf(error));
  }
  return result;
}

namespace {

// Which of two replicas' answers a put reports: stored, then already
// cached, then any other answer, then none.
int Rank(v1::PutOutcome o) {
  switch (o) {
    case v1::PUT_STORED:
      return 3;
    case v1::PUT_ALREADY_CACHED:
      return 2;
    case v1::PUT_OUTCOME_UNSPECIFIED:
      return 0;
    default:
      return 1;
  }
}

}  // namespace

std::vector<v1::PutOutcome> ClusterClient::Put(const std::string& ns, const BlockKey& parent,
                                               absl::Span<const PutBlock> blocks) {
  const std::shared_ptr<const Members> m = members();
  const std::vector<bool> usable = m->Usable();
  std::vector<std::vector<size_t>> groups(m->nodes.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    // A chain's first block goes to every root replica too.
    const size_t copies = i == 0 && parent.empty() ? std::max(root_replicas(*m), replicas(*m))
                                                   : replicas(*m);
    for (size_t n : m->placement.Ranked(blocks[i].key, copies, usable)) groups[n].push_back(i);
  }
  std::vector<v1::PutOutcome> outcomes(blocks.size(), v1::PUT_OUTCOME_UNSPECIFIED);
  Mutex outcomes_mu;
  ForEachGroup(groups, [&](size_t n) {
    std::vector<PutBlock> subset;
    for (size_t i : groups[n]) {
      subset.push_back(blocks[i]);
      subset.back().root = true;  // its parent may live on another node
    }
    absl::StatusOr<std::vector<v1::PutOutcome>> got =
        ClientOf(*m->nodes[n])->Put(ns, BlockKey(), subset);
    Report(*m->nodes[n], got.status());
    if (!got.ok()) return;
    MutexLock lock(&outcomes_mu);
    for (size_t j = 0; j < got->size() && j < groups[n].size(); ++j) {
      v1::PutOutcome& best = outcomes[groups[n][j]];
      if (Rank((*got)[j]) > Rank(best)) best = (*got)[j];
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
    out.push_back({n->address, n->health->up(), n->health->failures()});
  }
  return out;
}

ClientCounters ClusterClient::counters() const {
  const std::shared_ptr<const Members> m = members();
  ClientCounters total;
  for (const auto& n : m->nodes) {
    std::shared_ptr<Client> client;
    {
      MutexLock lock(&n->mu);
      client = n->client;
    }
    if (client == nullptr) continue;
    const ClientCounters c = client->counters();
    total.lookups += c.lookups;
    total.lookup_errors += c.lookup_errors;
    total.direct_lookups += c.direct_lookups;
    total.fetches += c.fetches;
    total.fetch_errors += c.fetch_errors;
    total.fetched_bytes += c.fetched_bytes;
    total.data_port_fallbacks += c.data_port_fallbacks;
    total.local_path_fallbacks += c.local_path_fallbacks;
    total.local_path_blocks += c.local_path_blocks;
    total.local_direct_reads += c.local_direct_reads;
    total.puts_sent += c.puts_sent;
    total.puts_dropped += c.puts_dropped;
    total.put_errors += c.put_errors;
    total.figures += c.figures;
  }
  // Whole chains, not the nodes' parts of them.
  const ClientFigures chains = chain_metrics_.Take();
  total.figures.lookup_keys = chains.lookup_keys;
  total.figures.lookup_hit_keys = chains.lookup_hit_keys;
  total.figures.lookup_misses = chains.lookup_misses;
  total.figures.fetch_misses = chains.fetch_misses;
  return total;
}

}  // namespace kvcache
