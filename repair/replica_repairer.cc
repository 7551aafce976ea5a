#include "repair/replica_repairer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "membership/rendezvous.h"
#include "common/byte_size.h"

namespace kvcache {

ReplicaRepairer::ReplicaRepairer(BlockStore& store, const Options& options)
    : store_(store), options_(options), thread_([this] { Loop(); }) {}

ReplicaRepairer::~ReplicaRepairer() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  thread_.join();
}

void ReplicaRepairer::SetMembers(std::vector<std::string> members) {
  {
    MutexLock lock(&mu_);
    members_ = std::move(members);
    ++changes_;
    changed_at_ = absl::Now();
  }
  wake_.SignalAll();
}

ReplicaRepairer::Progress ReplicaRepairer::progress() const {
  Progress p;
  p.passes = passes_.load(std::memory_order_relaxed);
  p.checked = checked_.load(std::memory_order_relaxed);
  p.copied = copied_.load(std::memory_order_relaxed);
  p.copied_bytes = copied_bytes_.load(std::memory_order_relaxed);
  p.failed = failed_.load(std::memory_order_relaxed);
  p.running = running_.load(std::memory_order_relaxed);
  return p;
}

std::string ReplicaRepairer::Describe() const {
  const Progress p = progress();
  return absl::StrCat(p.running ? "copying" : "idle", "; ", p.passes, " passes, ", p.checked,
                      " checked, ", p.copied, " blocks (", FormatBytes(p.copied_bytes),
                      ") copied, ", p.failed, " failed; ", options_.replicas, " replicas, at most ",
                      FormatBytes(options_.bytes_per_second), "/s");
}

bool ReplicaRepairer::Stopping() {
  MutexLock lock(&mu_);
  return stopping_;
}

void ReplicaRepairer::Loop() {
  uint64_t handled = 0;
  while (true) {
    std::vector<std::string> members;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && changes_ == handled) wake_.Wait(&mu_);
      // Let a burst of changes settle into one pass.
      while (!stopping_ && absl::Now() < changed_at_ + options_.settle) {
        wake_.WaitFor(&mu_, absl::ToChronoNanoseconds(changed_at_ + options_.settle - absl::Now()));
      }
      if (stopping_) return;
      handled = changes_;
      members = members_;
    }
    running_.store(true, std::memory_order_relaxed);
    if (Pass(members)) passes_.fetch_add(1, std::memory_order_relaxed);
    running_.store(false, std::memory_order_relaxed);
  }
}

bool ReplicaRepairer::Pass(const std::vector<std::string>& members) {
  if (std::find(members.begin(), members.end(), options_.self) == members.end()) return true;
  const Rendezvous placement(members);

  const size_t copies = std::min<size_t>(std::max(options_.replicas, 1), members.size());
  budget_at_ = absl::Now();
  std::vector<bool> unreachable(members.size(), false);  // in this pass
  for (const std::string& tenant : store_.namespaces().Tenants()) {
    const std::vector<NamespaceId> ids = store_.namespaces().IdsOfTenant(tenant);
    for (const BlockView& view : store_.Snapshot(ids)) {
      if (Stopping()) return false;
      const std::string ns_name = store_.namespaces().Name(view.ns).name;
      for (size_t n : placement.Ranked(view.meta.key, copies)) {
        if (placement.node(n) == options_.self || unreachable[n]) continue;
        Client* peer = ClientFor(placement.node(n), tenant);
        if (peer == nullptr || !Repair(*peer, view.ns, ns_name, view.meta.key)) {
          unreachable[n] = true;
        }
      }
    }
  }
  return true;
}

Client* ReplicaRepairer::ClientFor(const std::string& address, const std::string& tenant) {
  std::unique_ptr<Client>& client = clients_[{address, tenant}];
  if (client == nullptr) {
    ClientOptions options = options_.node;
    options.address = address;
    options.security.act_for_tenant = tenant;
    absl::StatusOr<std::unique_ptr<Client>> made = Client::Create(options);
    if (!made.ok()) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    client = std::move(*made);
  }
  return client.get();
}

bool ReplicaRepairer::Repair(Client& peer, NamespaceId ns, const std::string& ns_name,
                             const BlockKey& key) {
  checked_.fetch_add(1, std::memory_order_relaxed);
  const LookupResult there = peer.Lookup(ns_name, {key});
  if (!there.status.ok()) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (there.hits == 1) return true;
  // No hit is counted and nothing is promoted: a copy for a peer is not a
  // reader. (The bytes are read before the rate wait: one block in hand.)
  absl::StatusOr<std::string> bytes = store_.CopyOut(ns, key);
  if (!bytes.ok()) {
    // Gone meanwhile is fine; no room to read it is a failure to count.
    if (bytes.status().code() != absl::StatusCode::kNotFound) {
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }
  const uint64_t size = bytes->size();
  // At most bytes_per_second, with up to a second's worth in hand.
  const double rate = static_cast<double>(options_.bytes_per_second);
  while (true) {
    const absl::Time now = absl::Now();
    budget_bytes_ = std::min(rate, budget_bytes_ + absl::ToDoubleSeconds(now - budget_at_) * rate);
    budget_at_ = now;
    if (budget_bytes_ >= static_cast<double>(size) || budget_bytes_ >= rate) break;
    if (Stopping()) return true;
    absl::SleepFor(std::min(absl::Milliseconds(100),
                            absl::Seconds((static_cast<double>(size) - budget_bytes_) / rate)));
  }
  budget_bytes_ -= static_cast<double>(size);
  PutBlock block;
  block.key = key;
  block.payload = *std::move(bytes);
  block.root = true;
  // A copy for redundancy must not push out blocks the peer's readers use:
  // it waits at the cold end until a read gives it an ordinary place.
  block.evict_first = true;
  absl::StatusOr<std::vector<v1::PutOutcome>> put = peer.Put(ns_name, BlockKey(), {block});
  if (put.ok() && put->size() == 1 &&
      ((*put)[0] == v1::PUT_STORED || (*put)[0] == v1::PUT_ALREADY_CACHED)) {
    if ((*put)[0] == v1::PUT_STORED) {
      copied_.fetch_add(1, std::memory_order_relaxed);
      copied_bytes_.fetch_add(size, std::memory_order_relaxed);
    }
    return true;
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace kvcache
