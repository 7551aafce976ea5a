// The NVMe tier end to end, against real kvstored processes on one data
// directory: spill and promotion, warm restart after SIGTERM and after
// kill -9 under load, flipped bytes on disk, and a disk that refuses writes.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 128 << 10;

const std::string& Ns() {
  static const std::string ns = TestSchema().NamespaceName();
  return ns;
}

class E2eNvmeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/e2e_nvme_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }

  // A 4 MiB host tier spilling past half full onto a 64 MiB NVMe tier in dir_.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {"--host_capacity=4MiB", "--page_size=64KiB",
                                      "--nvme_dir=" + dir_,   "--nvme_capacity=64MiB",
                                      "--spill_high=0.5",     "--spill_low=0.25"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    auto d = DaemonProcess::Start("kvstore/kvstored", flags);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    auto c = Client::Create(TestClientOptions(daemon_->address()));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    stub_ = v1::KvCache::NewStub(
        grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  }

  v1::StatsResponse Stats() {
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(stub_->Stats(&ctx, {}, &stats).ok());
    return stats;
  }
  const v1::TierStats& Nvme(const v1::StatsResponse& s) { return s.tiers(2); }

  template <typename Pred>
  v1::StatsResponse AwaitStats(Pred done) {
    return kvcache::AwaitStats(*stub_, done);
  }

  // Puts a chain; every block must be stored, whatever the disk does.
  void PutChain(const std::vector<BlockKey>& chain) {
    auto put = client_->Put(Ns(), BlockKey(), TestPayloads(chain, kBlock));
    ASSERT_TRUE(put.ok()) << put.status();
    ASSERT_EQ(put->size(), chain.size());
    for (v1::PutOutcome o : *put) EXPECT_EQ(o, v1::PUT_STORED);
  }

  // Fetches the cached prefix of `chain`; counts blocks read and wrong ones.
  size_t FetchPrefix(const std::vector<BlockKey>& chain, uint64_t* wrong) {
    LookupResult hit = client_->Lookup(Ns(), chain);
    if (!hit.status.ok() || hit.hits == 0) return 0;
    std::vector<std::string> bufs(hit.hits, std::string(kBlock, '\0'));
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < hit.hits; ++i) {
      targets.push_back(
          {chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), kBlock)});
    }
    FetchResult got = client_->Fetch(Ns(), targets);
    for (size_t i = 0; i < got.blocks; ++i) {
      if (bufs[i] != PayloadFor(chain[i], kBlock)) ++*wrong;
    }
    return got.blocks;
  }

  std::string dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
};

TEST_F(E2eNvmeTest, SpillsPromotesAndFindsBlocksAfterSigterm) {
  Start();
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 6; ++seed) {  // 6 x 8 x 128 KiB = 6 MiB: more than DRAM
    chains.push_back(TestChain(7000 + seed, 8));
    PutChain(chains.back());
  }
  v1::StatsResponse s = AwaitStats([](const v1::StatsResponse& s) {
    return s.spilled_blocks() > 0 && s.tiers(1).used_bytes() <= (2u << 20);
  });
  EXPECT_TRUE(Nvme(s).enabled()) << Nvme(s).detail();
  EXPECT_GT(s.spilled_blocks(), 16u);
  EXPECT_EQ(s.evicted_blocks(), 0u);  // spilled, not dropped

  // The first chain is the coldest: Lookup and Inspect say it is on NVMe.
  LookupResult hit = client_->Lookup(Ns(), chains[0]);
  ASSERT_EQ(hit.hits, 8u);
  grpc::ClientContext lctx;
  v1::LookupRequest lreq;
  lreq.set_namespace_(Ns());
  lreq.add_keys(chains[0][0].ToBytes());
  v1::LookupResponse lresp;
  ASSERT_TRUE(stub_->Lookup(&lctx, lreq, &lresp).ok());
  EXPECT_EQ(lresp.blocks(0).tier(), v1::TIER_NVME);

  // Each fetch path says which blocks it read back from NVMe: chains 0-2
  // are cold, so their first block is served from NVMe.
  const auto& paths = kFetchPaths;
  for (int p = 0; p < 3; ++p) {
    auto client = ClientThrough(daemon_->address(), paths[p]);
    ASSERT_TRUE(client.ok());
    std::vector<std::string> bufs(8, std::string(kBlock, '\0'));
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < 8; ++i) {
      targets.push_back(
          {chains[p][i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), kBlock)});
    }
    FetchResult got = (*client)->Fetch(Ns(), targets);
    ASSERT_EQ(got.blocks, 8u) << paths[p].name << ": " << got.status;
    ASSERT_EQ(got.tiers.size(), 8u) << paths[p].name;
    EXPECT_EQ(got.tiers[0], v1::TIER_NVME) << paths[p].name;
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(bufs[i], PayloadFor(chains[p][i], kBlock));
    FetchResult again = (*client)->Fetch(Ns(), absl::MakeSpan(targets).subspan(0, 1));
    ASSERT_EQ(again.tiers.size(), 1u);
    EXPECT_EQ(again.tiers[0], v1::TIER_HOST) << paths[p].name;  // promoted and kept
  }
  uint64_t wrong = 0;
  for (const auto& chain : chains) EXPECT_EQ(FetchPrefix(chain, &wrong), 8u);
  EXPECT_EQ(wrong, 0u);
  s = Stats();
  EXPECT_GT(s.promoted_blocks(), 0u);
  grpc::ClientContext ictx;
  v1::InspectRequest ireq;
  ireq.set_namespace_(Ns());
  ireq.set_key(chains[0][0].ToBytes());
  v1::InspectResponse iresp;
  ASSERT_TRUE(stub_->Inspect(&ictx, ireq, &iresp).ok());
  EXPECT_GE(iresp.tiers_size(), 1);
  EXPECT_EQ(iresp.tiers(iresp.tiers_size() - 1), v1::TIER_NVME);

  const uint64_t on_nvme = Nvme(Stats()).blocks();
  EXPECT_EQ(daemon_->Stop(), 0);
  Start();
  s = Stats();
  EXPECT_EQ(s.nvme_restored_blocks(), on_nvme);
  EXPECT_EQ(Nvme(s).blocks(), on_nvme);
  grpc::ClientContext list_ctx;
  v1::ListRequest list_req;
  list_req.set_namespace_(Ns());
  v1::ListResponse listed;
  ASSERT_TRUE(stub_->List(&list_ctx, list_req, &listed).ok());
  ASSERT_GT(listed.prefixes_size(), 0);
  for (const v1::PrefixInfo& p : listed.prefixes()) {  // after a restart, all on NVMe only
    ASSERT_EQ(p.tiers_size(), 1);
    EXPECT_EQ(p.tiers(0), v1::TIER_NVME);
  }
  size_t fetched = 0;
  for (const auto& chain : chains) fetched += FetchPrefix(chain, &wrong);
  EXPECT_EQ(fetched, on_nvme);  // every block on NVMe, and only those, came back
  EXPECT_EQ(wrong, 0u);
}

TEST_F(E2eNvmeTest, FlippedBytesOnDiskNeverReachAClient) {
  Start({"--spill_low=0.01"});
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 4; ++seed) {
    chains.push_back(TestChain(8000 + seed, 8));
    PutChain(chains.back());
  }
  AwaitStats([](const v1::StatsResponse& s) { return s.spilled_blocks() >= 20; });
  EXPECT_EQ(daemon_->Stop(), 0);
  // Equal records lie back to back from offset 0: a 4 KiB header, then the
  // payload. Flip header bytes of some and payload bytes of others.
  const uint64_t record = 4096 + kBlock;
  const int fd = open((dir_ + "/blocks.data").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  for (uint64_t r = 0; r < 20; r += 2) {
    const uint64_t at = r * record + (r % 4 == 0 ? 100 : 4096 + 1000 * r);
    uint8_t b = 0;
    ASSERT_EQ(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    ASSERT_EQ(pwrite(fd, &b, 1, at), 1);
  }
  fsync(fd);
  close(fd);
  Start();
  uint64_t wrong = 0;
  size_t fetched = 0;
  for (const auto& chain : chains) fetched += FetchPrefix(chain, &wrong);
  EXPECT_EQ(wrong, 0u);
  v1::StatsResponse s = Stats();
  EXPECT_GT(s.nvme_corrupt_drops(), 0u);
  EXPECT_LT(fetched, 32u);
}

TEST_F(E2eNvmeTest, RefusedWritesDisableTheTierUntilTheyWorkAgain) {
  Start();
  std::vector<std::vector<BlockKey>> chains;
  for (uint32_t seed = 0; seed < 3; ++seed) {
    chains.push_back(TestChain(9000 + seed, 8));
    PutChain(chains.back());
  }
  AwaitStats([](const v1::StatsResponse& s) { return s.spilled_blocks() > 0; });
  // Past 4 KiB the kernel now refuses the daemon's file writes (EFBIG), as
  // a full disk would.
  rlimit capped{4096, RLIM_INFINITY};
  ASSERT_EQ(prlimit(daemon_->pid(), RLIMIT_FSIZE, &capped, nullptr), 0);
  for (uint32_t seed = 3; seed < 9; ++seed) {
    chains.push_back(TestChain(9000 + seed, 8));
    PutChain(chains.back());  // puts never fail for the disk
  }
  v1::StatsResponse s =
      AwaitStats([&](const v1::StatsResponse& s) { return !Nvme(s).enabled(); });
  EXPECT_FALSE(Nvme(s).enabled());
  EXPECT_NE(Nvme(s).detail().find("writes disabled"), std::string::npos) << Nvme(s).detail();
  EXPECT_GT(s.nvme_write_errors(), 0u);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchPrefix(chains.back(), &wrong), 8u);  // DRAM keeps serving
  EXPECT_GT(FetchPrefix(chains[0], &wrong), 0u);      // and NVMe reads still work
  EXPECT_EQ(wrong, 0u);

  rlimit open_again{RLIM_INFINITY, RLIM_INFINITY};
  ASSERT_EQ(prlimit(daemon_->pid(), RLIMIT_FSIZE, &open_again, nullptr), 0);
  const uint64_t spilled = s.spilled_blocks();
  for (uint32_t seed = 9; seed < 12; ++seed) PutChain(TestChain(9000 + seed, 8));
  s = AwaitStats([&](const v1::StatsResponse& s) {
    return Nvme(s).enabled() && s.spilled_blocks() > spilled;
  });
  EXPECT_TRUE(Nvme(s).enabled()) << Nvme(s).detail();
  EXPECT_GT(s.spilled_blocks(), spilled);
}

TEST_F(E2eNvmeTest, TwentyKillNineRestartsUnderLoadServeNoWrongByte) {
  std::atomic<uint64_t> wrong{0}, fetched{0};
  uint64_t restored_max = 0;
  for (int cycle = 0; cycle < 20; ++cycle) {
    Start();
    restored_max = std::max<uint64_t>(restored_max, Stats().nvme_restored_blocks());
    std::atomic<bool> stop{false};
    std::vector<std::thread> load;
    for (int w = 0; w < 3; ++w) {
      load.emplace_back([&, w] {
        auto client = Client::Create(TestClientOptions(daemon_->address()));
        if (!client.ok()) return;
        for (int i = 0; !stop.load(); ++i) {
          // Each cycle writes new prompts and reads ones earlier cycles wrote.
          std::vector<BlockKey> chain = TestChain(10000 + (cycle * 3 + w * 5 + i) % 60, 6);
          LookupResult hit = (*client)->Lookup(Ns(), chain);
          std::vector<std::string> bufs(hit.hits, std::string(kBlock, '\0'));
          std::vector<FetchTarget> targets;
          for (size_t b = 0; b < hit.hits; ++b) {
            targets.push_back(
                {chain[b], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[b].data()), kBlock)});
          }
          FetchResult got = (*client)->Fetch(Ns(), targets);
          for (size_t b = 0; b < got.blocks; ++b) {
            if (bufs[b] != PayloadFor(chain[b], kBlock)) wrong.fetch_add(1);
            fetched.fetch_add(1);
          }
          std::vector<BlockKey> rest(chain.begin() + got.blocks, chain.end());
          (*client)->Put(Ns(), got.blocks == 0 ? BlockKey() : chain[got.blocks - 1],
                         TestPayloads(rest, kBlock));  // may fail as the daemon dies
        }
      });
    }
    // Load for at least 300 ms and 10 fetched blocks (sanitizer builds are
    // slow), then a kill at a varying moment.
    const uint64_t before = fetched.load();
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    absl::SleepFor(absl::Milliseconds(300));
    while (fetched.load() < before + 10 && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    absl::SleepFor(absl::Milliseconds(37 * (cycle % 5)));
    daemon_->Kill();  // mid-write: spills and puts in flight
    stop = true;
    for (auto& t : load) t.join();
    client_.reset();
  }
  Start();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(fetched.load(), 100u);
  EXPECT_GT(restored_max, 0u);  // restarts found blocks written before a kill
}

}  // namespace
}  // namespace kvcache
