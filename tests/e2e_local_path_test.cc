// The same-host path: workers on the daemon's host map its arena and move
// leases, not bytes. Byte-exact both ways; a killed or stalled lease holder
// gives its pages back; eviction skips leased blocks; only allowed uids get
// the arena; without the socket, clients fall back.
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

extern char** environ;

namespace kvcache {
namespace {

class E2eLocalPathTest : public DaemonTest {
 protected:
  void Start(std::vector<std::string> flags) {
    flags.push_back("--host_capacity=16MiB");
    flags.push_back("--page_size=64KiB");
    StartDaemon(flags);
  }

  void TearDown() override {
    if (holder_pid_ > 0) {
      kill(holder_pid_, SIGKILL);
      waitpid(holder_pid_, nullptr, 0);
    }
    DaemonTest::TearDown();
  }

  // Starts tests/lease_holder on `key` and waits until it holds its leases.
  void HoldLeases(const BlockKey& key, uint64_t put_bytes) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<std::string> args = {"tests/lease_holder", hello_.local_socket(), ns_, key.ToHex(),
                                     std::to_string(put_bytes)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&holder_pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    char line[16] = {};
    ASSERT_GT(read(out[0], line, sizeof(line) - 1), 0);
    close(out[0]);
    ASSERT_EQ(std::string(line), "HOLDING\n");
  }

  const std::string ns_ = TestSchema().NamespaceName();
  pid_t holder_pid_ = 0;
};

TEST_F(E2eLocalPathTest, PutsAndFetchesAreByteExactAndMoveNoBytesThroughASocket) {
  Start({});
  ASSERT_FALSE(hello_.local_socket().empty());
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> chain = TestChain(1, 8);
  auto outcomes = (*client)->Put(ns_, BlockKey(), TestPayloads(chain, 200000));
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  for (auto o : *outcomes) EXPECT_EQ(o, v1::PUT_STORED);
  size_t got = 0;
  std::vector<std::string> out = FetchAll(**client, ns_, chain, 200000, &got);
  EXPECT_EQ(got, 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], 200000));
  EXPECT_EQ((*client)->counters().local_path_blocks, 16u);  // 8 put + 8 fetched
  EXPECT_EQ((*client)->counters().local_path_fallbacks, 0u);
  EXPECT_EQ((*client)->counters().fetched_bytes, 8u * 200000);

  // A gRPC-only reader sees the very same bytes.
  ClientOptions remote = TestClientOptions(daemon_->address());
  remote.use_local_path = false;
  remote.use_data_port = false;
  auto grpc_client = Client::Create(remote);
  out = FetchAll(**grpc_client, ns_, chain, 200000, &got);
  EXPECT_EQ(got, 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], 200000));
}

// A daemon that stops answering (SIGSTOP: its sockets stay open) costs a
// same-host lease fetch one deadline, not one on the same-host socket and
// then more on the data port and gRPC.
TEST_F(E2eLocalPathTest, AHungDaemonCostsALeaseFetchOneDeadline) {
  Start({});
  ClientOptions options = TestClientOptions(daemon_->address());
  options.use_direct_reads = false;  // every fetch asks the daemon for a lease
  options.deadline = absl::Seconds(1);
  auto client = Client::Create(options);
  const std::vector<BlockKey> chain = TestChain(12, 1);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 5000)).ok());
  ASSERT_EQ(kill(daemon_->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Milliseconds(100));  // until every thread has stopped
  std::string out(5000, '\0');
  FetchTarget target{chain[0], absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size())};
  const absl::Time start = absl::Now();
  FetchResult fetched = (*client)->Fetch(ns_, {&target, 1});
  EXPECT_EQ(fetched.status.code(), absl::StatusCode::kDeadlineExceeded) << fetched.status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900));
  EXPECT_EQ((*client)->counters().local_path_fallbacks, 0u);
  EXPECT_EQ((*client)->counters().data_port_fallbacks, 0u);
  ASSERT_EQ(kill(daemon_->pid(), SIGCONT), 0);
  // Awake again: the set-aside socket is replaced and the bytes come back.
  absl::Status last;
  for (int i = 0; i < 100; ++i) {
    fetched = (*client)->Fetch(ns_, {&target, 1});
    last = fetched.status;
    if (fetched.status.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(last.ok()) << last;
  EXPECT_EQ(out, PayloadFor(chain[0], 5000));
}

TEST_F(E2eLocalPathTest, FetchLeasesAreReleasedWithTheNextRequestAndWhenTheClientGoesQuiet) {
  Start({});
  ClientOptions options = TestClientOptions(daemon_->address());
  options.use_direct_reads = false;  // every fetch asks the daemon for a lease
  auto client = Client::Create(options);
  const std::vector<BlockKey> chain = TestChain(13, 2);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 5000)).ok());
  std::string out(5000, '\0');
  for (int i = 0; i < 50; ++i) {
    FetchTarget target{chain[i % 2],
                       absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size())};
    ASSERT_EQ((*client)->Fetch(ns_, {&target, 1}).blocks, 1u);
    ASSERT_EQ(out, PayloadFor(chain[i % 2], 5000));
  }
  // Each fetch's request carried the release of the one before, and the
  // daemon read it first: only the last lease can still be held.
  EXPECT_LE(Stats().leases_held(), 1u);
  EXPECT_LE(Stats().pinned_bytes(), 5000u);
  // With the client alive but quiet, the last release goes alone.
  const v1::StatsResponse quiet = AwaitNothingPinnedOrStaged(*stub_);
  EXPECT_EQ(quiet.leases_held(), 0u);
  EXPECT_EQ(quiet.pinned_bytes(), 0u);
  EXPECT_EQ((*client)->counters().local_path_fallbacks, 0u);
}

TEST_F(E2eLocalPathTest, RehashedLocalFetchesAreByteExactToo) {
  Start({});
  ClientOptions options = TestClientOptions(daemon_->address());
  options.verify_local_fetches = true;
  auto client = Client::Create(options);
  std::vector<BlockKey> chain = TestChain(9, 3);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 300000)).ok());
  size_t got = 0;
  std::vector<std::string> out = FetchAll(**client, ns_, chain, 300000, &got);
  EXPECT_EQ(got, 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], 300000));
  EXPECT_EQ((*client)->counters().local_path_blocks, 6u);  // 3 put + 3 fetched locally
}

TEST_F(E2eLocalPathTest, KilledLeaseHolderGivesPagesBack) {
  Start({});
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> chain = TestChain(2, 1);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 300000)).ok());
  HoldLeases(chain[0], 500000);
  v1::StatsResponse held = Stats();
  EXPECT_EQ(held.pinned_bytes(), 300000u);
  // An uncommitted put lease holds only the connection's staging memfd; the
  // arena's pages are taken at commit.
  EXPECT_EQ(held.staged_bytes(), 0u);
  EXPECT_EQ(held.leases_held(), 2u);  // its fetch lease and its put lease
  kill(holder_pid_, SIGKILL);  // TearDown checks that both go back to zero
}

TEST_F(E2eLocalPathTest, StalledLeasesExpire) {
  Start({"--lease_ttl_s=1"});
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> chain = TestChain(3, 1);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 100000)).ok());
  HoldLeases(chain[0], 100000);  // alive, but never releases
  EXPECT_GT(Stats().pinned_bytes(), 0u);
  absl::SleepFor(absl::Milliseconds(2500));
  v1::StatsResponse later = Stats();
  EXPECT_EQ(later.pinned_bytes(), 0u);
  EXPECT_EQ(later.staged_bytes(), 0u);
  EXPECT_EQ(later.leases_held(), 0u);
}

TEST_F(E2eLocalPathTest, EvictionSkipsLeasedBlocks) {
  Start({});
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> leased = TestChain(4, 1);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(leased, 1 << 20)).ok());
  HoldLeases(leased[0], 1 << 20);
  // 24 MiB of newer blocks through a 16 MiB tier: everything unleased churns.
  for (uint32_t seed = 100; seed < 124; ++seed) {
    ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(TestChain(seed, 1), 1 << 20)).ok());
  }
  EXPECT_GT(Stats().evicted_blocks(), 0u);
  size_t got = 0;
  std::vector<std::string> out = FetchAll(**client, ns_, leased, 1 << 20, &got);
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(out[0], PayloadFor(leased[0], 1 << 20));
}

TEST_F(E2eLocalPathTest, ConcurrentReadersAndWriters) {
  Start({});
  std::atomic<uint64_t> wrong{0}, right{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      auto client = Client::Create(TestClientOptions(daemon_->address()));
      for (int i = 0; i < 30; ++i) {
        std::vector<BlockKey> chain = TestChain(200 + (w + i) % 6, 4);
        size_t got = 0;
        std::vector<std::string> out = FetchAll(**client, ns_, chain, 100000, &got);
        for (size_t b = 0; b < got; ++b) {
          (out[b] == PayloadFor(chain[b], 100000) ? right : wrong).fetch_add(1);
        }
        std::vector<BlockKey> missing(chain.begin() + got, chain.end());
        auto put = (*client)->Put(ns_, got == 0 ? BlockKey() : chain[got - 1],
                                  TestPayloads(missing, 100000));
        EXPECT_TRUE(put.ok()) << put.status();
      }
      EXPECT_EQ((*client)->counters().local_path_fallbacks, 0u);
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(right.load(), 100u);
}

// Puts of staged bytes: the client picks staging ranges itself, and here
// one client's threads share a staging space with room for two blocks, so
// chains overlap their copies only when a second range is free and wait for
// one otherwise. Every block lands byte-exact, none by the lease path.
TEST_F(E2eLocalPathTest, ThreadsSharingATightStagingSpaceAllPutByteExact) {
  Start({"--max_block_size=256KiB", "--local_staging=512KiB"});
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  ASSERT_TRUE(client.ok());
  constexpr size_t kBytes = 200000;  // two fit the staging space, three do not
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      const std::vector<BlockKey> chain = TestChain(300 + w, 6);
      auto put = (*client)->Put(ns_, BlockKey(), TestPayloads(chain, kBytes));
      ASSERT_TRUE(put.ok()) << put.status();
      for (v1::PutOutcome o : *put) EXPECT_EQ(o, v1::PUT_STORED);
    });
  }
  for (auto& t : writers) t.join();
  for (int w = 0; w < 4; ++w) {
    const std::vector<BlockKey> chain = TestChain(300 + w, 6);
    size_t got = 0;
    std::vector<std::string> out = FetchAll(**client, ns_, chain, kBytes, &got);
    ASSERT_EQ(got, 6u) << w;
    for (size_t b = 0; b < got; ++b) EXPECT_EQ(out[b], PayloadFor(chain[b], kBytes)) << w << b;
  }
  EXPECT_EQ((*client)->counters().local_path_fallbacks, 0u);
  // A block larger than any the daemon takes: its own reason, nothing held.
  const BlockKey big = TestChain(399, 1)[0];
  auto refused = (*client)->Put(ns_, BlockKey(), TestPayloads({big}, 600000));
  EXPECT_FALSE(refused.ok());
}

TEST_F(E2eLocalPathTest, OnlyAllowedUidsGetTheArena) {
  Start({"--local_allowed_uids=4242424"});  // not us
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, hello_.local_socket().c_str(), sizeof(addr.sun_path) - 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  uint32_t head[2];
  ASSERT_EQ(recv(fd, head, sizeof(head), MSG_WAITALL), 8);
  EXPECT_EQ(head[0], static_cast<uint32_t>(LocalMessage::kRefused));
  std::string body(head[1], '\0');
  recv(fd, body.data(), body.size(), MSG_WAITALL);
  v1::LocalResult refused;
  ASSERT_TRUE(refused.ParseFromString(body));
  EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kPermissionDenied));
  close(fd);
  // The client library quietly uses the data port instead.
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> chain = TestChain(5, 2);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 5000)).ok());
  size_t got = 0;
  FetchAll(**client, ns_, chain, 5000, &got);
  EXPECT_EQ(got, 2u);
  EXPECT_EQ((*client)->counters().local_path_blocks, 0u);
}

TEST_F(E2eLocalPathTest, FallsBackWhenTheSocketIsMissing) {
  Start({});
  std::remove(hello_.local_socket().c_str());  // advertised, but gone
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  std::vector<BlockKey> chain = TestChain(6, 3);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 7000)).ok());
  size_t got = 0;
  std::vector<std::string> out = FetchAll(**client, ns_, chain, 7000, &got);
  EXPECT_EQ(got, 3u);
  EXPECT_EQ(out[2], PayloadFor(chain[2], 7000));
  EXPECT_EQ((*client)->counters().local_path_blocks, 0u);
}

TEST_F(E2eLocalPathTest, OffMeansNoSocket) {
  Start({"--local_socket=off"});
  EXPECT_TRUE(hello_.local_socket().empty());
  auto client = Client::Create(TestClientOptions(daemon_->address()));
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(TestChain(7, 1), 100)).ok());
  EXPECT_EQ((*client)->counters().local_path_blocks, 0u);
}

}  // namespace
}  // namespace kvcache
