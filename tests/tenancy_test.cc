// Tenants against each other through an in-process daemon: each sees only
// its own blocks on every RPC, even when the index's hashes collide on
// purpose, and quotas hold under concurrent puts.
#include <array>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/security_fixture.h"

namespace kvcache {
namespace {

// Payloads of tenant beta: the same keys as alpha's, other bytes.
std::vector<PutBlock> BetaPayloads(const std::vector<BlockKey>& chain) {
  std::vector<PutBlock> out = TestPayloads(chain, kBlock);
  for (PutBlock& b : out) b.payload.assign(kBlock, 'B');
  return out;
}

TEST_F(SecurityTest, TenantsNeverSeeEachOthersBlocks) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, false));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string banner = (*daemon)->Banner();
  EXPECT_NE(banner.find("security:  TLS; tokens (5 identities"), std::string::npos) << banner;
  EXPECT_NE(banner.find("beside gRPC; TLS 1.3; tokens)"), std::string::npos) << banner;

  auto alpha = ClientOf(**daemon, Security("alpha-token"));
  auto beta = ClientOf(**daemon, Security("beta-token"));
  const std::vector<BlockKey> chain = TestChain(1, 4);
  auto put = alpha->Put("ns", BlockKey(), TestPayloads(chain, kBlock));
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(*put, std::vector<v1::PutOutcome>(4, v1::PUT_STORED));

  // Beta: nothing on any RPC.
  EXPECT_EQ(beta->Lookup("ns", chain).hits, 0u);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChecked(*beta, "ns", chain, kBlock, &wrong).blocks, 0u);
  auto beta_stub = StubOf(**daemon, Security("beta-token"));
  {
    grpc::ClientContext ctx;
    v1::ListResponse list;
    ASSERT_TRUE(beta_stub->List(&ctx, v1::ListRequest(), &list).ok());
    EXPECT_EQ(list.prefixes_size(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::InspectRequest inspect;
    inspect.set_namespace_("ns");
    inspect.set_key(chain[0].ToBytes());
    v1::InspectResponse r;
    EXPECT_EQ(beta_stub->Inspect(&ctx, inspect, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    v1::EvictResponse r;
    ASSERT_TRUE(beta_stub->Evict(&ctx, evict, &r).ok());
    EXPECT_EQ(r.blocks(), 0u);
  }
  // Beta stores the same keys with its own bytes; each reads its own.
  auto beta_put = beta->Put("ns", BlockKey(), BetaPayloads(chain));
  ASSERT_TRUE(beta_put.ok()) << beta_put.status();
  EXPECT_EQ(FetchChecked(*alpha, "ns", chain, kBlock, &wrong).blocks, 4u);
  EXPECT_EQ(wrong, 0u);
  std::vector<std::string> bufs(4, std::string(kBlock, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < 4; ++i) {
    targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), kBlock)});
  }
  ASSERT_EQ(beta->Fetch("ns", targets).blocks, 4u);
  for (const std::string& b : bufs) EXPECT_EQ(b, std::string(kBlock, 'B'));

  // All of it went over the data port, inside TLS, with no fallback.
  for (Client* c : {alpha.get(), beta.get()}) {
    const ClientCounters counters = c->counters();
    EXPECT_EQ(counters.data_port_fallbacks, 0u);
    EXPECT_GT(counters.figures.at(ClientPath::kDataPort, ClientOp::kFetch).requests, 0u);
    EXPECT_GT(counters.figures.at(ClientPath::kDataPort, ClientOp::kPut).requests, 0u);
    EXPECT_EQ(counters.figures.at(ClientPath::kGrpc, ClientOp::kFetch).requests, 0u);
  }

  // Stats: a tenant sees its own usage line, an admin every tenant's.
  {
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    ASSERT_TRUE(beta_stub->Stats(&ctx, {}, &stats).ok());
    ASSERT_EQ(stats.tenants_size(), 1);
    EXPECT_EQ(stats.tenants(0).tenant(), "beta");
  }
  auto admin = StubOf(**daemon, Security("admin-token"));
  {
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    ASSERT_TRUE(admin->Stats(&ctx, {}, &stats).ok());
    EXPECT_EQ(stats.tenants_size(), 2);
  }
  // An admin lists and evicts in another tenant; a writer may not.
  {
    grpc::ClientContext ctx;
    v1::ListRequest list;
    list.set_tenant("alpha");
    v1::ListResponse r;
    ASSERT_TRUE(admin->List(&ctx, list, &r).ok());
    ASSERT_EQ(r.prefixes_size(), 1);
    EXPECT_EQ(r.prefixes(0).blocks(), 4u);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    evict.set_tenant("alpha");
    v1::EvictResponse r;
    EXPECT_EQ(beta_stub->Evict(&ctx, evict, &r).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    evict.set_tenant("alpha");
    v1::EvictResponse r;
    ASSERT_TRUE(admin->Evict(&ctx, evict, &r).ok());
    EXPECT_EQ(r.blocks(), 4u);
  }
  EXPECT_EQ(alpha->Lookup("ns", chain).hits, 0u);
  EXPECT_EQ(beta->Lookup("ns", chain).hits, 4u);  // untouched
}

// 10^5 random (tenant, namespace, key) tuples against an index that keeps
// only 8 bits of each entry's hash, so unequal tuples collide all the time:
// a tenant finds exactly the tuples it stored, with its own bytes, and never
// one another tenant stored under the same namespace and key.
// An admin may act for a tenant (replica repair does, copying each tenant's
// blocks in that tenant), over gRPC and the data port; no one else may.
TEST_F(SecurityTest, OnlyAnAdminActsForAnotherTenant) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, false));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<BlockKey> chain = TestChain(40, 3);
  ChannelSecurity for_alpha = Security("admin-token");
  for_alpha.act_for_tenant = "alpha";
  auto admin = ClientOf(**daemon, for_alpha);
  {
    v1::HelloResponse hello;
    grpc::ClientContext ctx;
    ASSERT_TRUE(StubOf(**daemon, for_alpha)->Hello(&ctx, {}, &hello).ok());
    EXPECT_EQ(hello.tenant(), "alpha");
  }
  auto put = admin->Put("ns", BlockKey(), TestPayloads(chain, kBlock));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*put)[0], v1::PUT_STORED);
  // It went over the data port, acting for alpha there too.
  EXPECT_EQ(admin->counters().figures.at(ClientPath::kDataPort, ClientOp::kPut).requests, 1u);
  // Alpha finds its blocks, byte-exact; the admin's own tenant does not.
  uint64_t wrong = 0;
  auto alpha = ClientOf(**daemon, Security("alpha-token"));
  EXPECT_EQ(FetchChecked(*alpha, "ns", chain, kBlock, &wrong).blocks, chain.size());
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(ClientOf(**daemon, Security("admin-token"))->Lookup("ns", chain).hits, 0u);

  // A writer of alpha acting for beta: refused on every path, nothing stored.
  ChannelSecurity alpha_for_beta = Security("alpha-token");
  alpha_for_beta.act_for_tenant = "beta";
  EXPECT_EQ(LookupCode(*StubOf(**daemon, alpha_for_beta), chain),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::vector<BlockKey> other = TestChain(41, 1);
  auto refused = ClientOf(**daemon, alpha_for_beta)->Put("ns", BlockKey(), TestPayloads(other, kBlock));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  EXPECT_EQ(ClientOf(**daemon, Security("beta-token"))->Lookup("ns", other).hits, 0u);
  // Acting for its own tenant is just itself.
  ChannelSecurity alpha_for_alpha = Security("alpha-token");
  alpha_for_alpha.act_for_tenant = "alpha";
  EXPECT_EQ(ClientOf(**daemon, alpha_for_alpha)->Lookup("ns", chain).hits, chain.size());
  // A name no token file could hold.
  ChannelSecurity for_nonsense = Security("admin-token");
  for_nonsense.act_for_tenant = "no such/tenant";
  EXPECT_EQ(LookupCode(*StubOf(**daemon, for_nonsense), chain),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SecurityTest, RandomTuplesNeverCrossTenantsEvenWhenTheirHashesCollide) {
  DaemonOptions options = Options(false, false);
  options.store.index_hash_bits = 8;
  options.store.arena.capacity_bytes = 256ull << 20;
  options.store.arena.page_bytes = 4096;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<std::string> tenants = {"alpha", "beta", "ops"};
  const std::vector<std::string> tokens = {"alpha-token", "beta-token", "admin-token"};
  const std::vector<std::string> namespaces = {"n0", "n1", "n2", "n3"};
  std::vector<std::unique_ptr<Client>> clients;
  for (const std::string& token : tokens) clients.push_back(ClientOf(**daemon, Security(token, false)));
  constexpr size_t kPool = 2000, kTuples = 100000, kPayload = 64;
  std::vector<BlockKey> pool = TestChain(11, kPool);
  auto payload = [&](size_t t, size_t n, const BlockKey& k) {
    std::string p = PayloadFor(k, kPayload);
    p[0] = static_cast<char>('A' + t);
    p[1] = static_cast<char>('0' + n);
    return p;
  };
  std::mt19937_64 random(20261204);
  auto tuple = [&] {
    return std::array<size_t, 3>{random() % tenants.size(), random() % namespaces.size(),
                                 random() % kPool};
  };
  // What each tenant stores: the distinct tuples among 10^5 random ones.
  std::set<std::array<size_t, 3>> stored;
  for (size_t i = 0; i < kTuples; ++i) stored.insert(tuple());
  std::map<std::pair<size_t, size_t>, std::vector<size_t>> chains;
  for (const auto& [t, n, k] : stored) chains[{t, n}].push_back(k);
  for (const auto& [tn, keys] : chains) {
    const auto [t, n] = tn;
    BlockKey parent;
    for (size_t from = 0; from < keys.size(); from += 500) {
      std::vector<PutBlock> blocks;
      for (size_t i = from; i < std::min(keys.size(), from + 500); ++i) {
        blocks.push_back({pool[keys[i]], payload(t, n, pool[keys[i]])});
      }
      auto put = clients[t]->Put(namespaces[n], parent, blocks);
      ASSERT_TRUE(put.ok()) << put.status();
      for (v1::PutOutcome o : *put) ASSERT_EQ(o, v1::PUT_STORED);
      parent = blocks.back().key;
    }
  }
  // 10^5 random queries: a hit exactly where the asker stored the tuple,
  // and then its own bytes.
  uint64_t cross_hits = 0, lost = 0, wrong_bytes = 0, hits = 0;
  std::string buffer(kPayload, '\0');
  for (size_t i = 0; i < kTuples; ++i) {
    const auto q = tuple();
    const auto [t, n, k] = q;
    const LookupResult found = clients[t]->Lookup(namespaces[n], {&pool[k], 1});
    ASSERT_TRUE(found.status.ok()) << found.status;
    const bool mine = stored.count(q) > 0;
    if (found.hits == 1 && !mine) ++cross_hits;
    if (found.hits == 0 && mine) ++lost;
    if (found.hits == 0) continue;
    ++hits;
    FetchTarget target{pool[k], absl::MakeSpan(reinterpret_cast<uint8_t*>(buffer.data()), kPayload)};
    if (clients[t]->Fetch(namespaces[n], {&target, 1}).blocks != 1 ||
        buffer != payload(t, n, pool[k])) {
      ++wrong_bytes;
    }
  }
  EXPECT_EQ(cross_hits, 0u);
  EXPECT_EQ(wrong_bytes, 0u);
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(hits, kTuples / 2);  // most queries ask for a stored tuple
}

// Two tenants with quotas put three times their quota at once, two streams
// each, while a third without one fills the rest: neither ever holds more
// than its quota (each drops its own coldest blocks), and the third's
// pressure never evicts a block of a tenant within its quota.
TEST_F(SecurityTest, QuotasHoldUnderTwoTenantsConcurrentPuts) {
  constexpr uint64_t kQuota = 8ull << 20;
  DaemonOptions options = Options(false, false);
  options.store.arena.capacity_bytes = 32ull << 20;
  // Alpha's bound is on all tiers, beta's on the host tier: with no tier
  // below the host both bound the same bytes.
  options.store.tenant_quotas = {{"alpha", {.total = kQuota}}, {"beta", {.host = kQuota}}};
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_NE((*daemon)->Banner().find("quotas for 2 tenants"), std::string::npos);
  auto admin = StubOf(**daemon, Security("admin-token", false));
  auto usage = [&] {
    std::map<std::string, uint64_t> bytes;
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(admin->Stats(&ctx, {}, &stats).ok());
    for (const v1::TenantUsage& t : stats.tenants()) {
      bytes[t.tenant()] = t.bytes();
      EXPECT_EQ(t.host_bytes(), t.bytes()) << t.tenant();  // the host is the only tier
      EXPECT_EQ(t.nvme_bytes(), 0u);
      EXPECT_EQ(t.quota_bytes(), t.tenant() == "alpha" ? kQuota : 0) << t.tenant();
      EXPECT_EQ(t.host_quota_bytes(), t.tenant() == "beta" ? kQuota : 0) << t.tenant();
    }
    return bytes;
  };

  constexpr size_t kPerStream = 3 * (kQuota / kBlock) / 2;  // 1.5x the quota per stream
  std::atomic<bool> done{false};
  std::atomic<uint64_t> over_quota{0}, not_stored{0}, samples{0};
  std::thread monitor([&] {
    while (!done.load()) {
      samples.fetch_add(1);
      // Stats sums the index as of one instant (all its shards locked),
      // so every sample is exact: no slack.
      for (const auto& [tenant, bytes] : usage()) {
        if (tenant != "ops" && bytes > kQuota) over_quota.fetch_add(1);
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  std::vector<std::vector<BlockKey>> streams(4);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    streams[w] = TestChain(100 + w, kPerStream);
    writers.emplace_back([&, w] {
      auto client = ClientOf(**daemon, Security(w < 2 ? "alpha-token" : "beta-token", false));
      for (const BlockKey& key : streams[w]) {
        auto put = client->Put("ns", BlockKey(), TestPayloads({key}, kBlock));  // roots
        if (!put.ok() || (*put)[0] != v1::PUT_STORED) not_stored.fetch_add(1);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  monitor.join();
  EXPECT_GT(samples.load(), 10u);
  EXPECT_EQ(over_quota.load(), 0u);
  EXPECT_EQ(not_stored.load(), 0u);  // each made room from its own blocks
  std::map<std::string, uint64_t> after = usage();
  for (const char* tenant : {"alpha", "beta"}) {
    EXPECT_LE(after[tenant], kQuota) << tenant;
    EXPECT_GE(after[tenant], kQuota - 2 * kBlock) << tenant;  // and used it
  }
  // Each stream's newest block is there; its first ones went to make room.
  auto alpha = ClientOf(**daemon, Security("alpha-token", false));
  EXPECT_EQ(alpha->Lookup("ns", {&streams[0].back(), 1}).hits, 1u);
  EXPECT_EQ(alpha->Lookup("ns", {&streams[0].front(), 1}).hits, 0u);

  // Ops, with no quota, puts twice the whole arena: its pressure drops its
  // own blocks, never those of alpha and beta, who are within their quotas.
  auto ops = ClientOf(**daemon, Security("admin-token", false));
  const std::vector<BlockKey> flood = TestChain(200, 2 * (32ull << 20) / kBlock);
  for (const BlockKey& key : flood) ASSERT_TRUE(ops->Put("ns", BlockKey(), TestPayloads({key}, kBlock)).ok());
  std::map<std::string, uint64_t> flooded = usage();
  EXPECT_EQ(flooded["alpha"], after["alpha"]);
  EXPECT_EQ(flooded["beta"], after["beta"]);
  EXPECT_GT(flooded["ops"], 0u);
  EXPECT_EQ(ops->Lookup("ns", {&flood.back(), 1}).hits, 1u);
}

}  // namespace
}  // namespace kvcache
