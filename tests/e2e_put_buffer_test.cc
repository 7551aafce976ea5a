// Put buffers: blocks a worker writes into the daemon's staging space are
// put from where they lie (the daemon copies and verifies them; the client
// only hashes), byte-exact; the buffers may hold half of the space, and a
// block that fits only where they are goes over the network instead of
// waiting for ever.
#include <cstring>
#include <memory>
#include <vector>

#include "client/local_path_client.h"
#include "client/put_buffer.h"
#include "gtest/gtest.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

constexpr size_t kStaging = 1 << 20;  // --local_staging=1MiB

class E2ePutBufferTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    StartDaemon({"--host_capacity=16MiB", "--page_size=64KiB", "--max_block_size=768KiB",
                 "--local_staging=1MiB"});
    auto client = Client::Create(TestClientOptions(daemon_->address()));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // A put buffer holding PayloadFor(key, size).
  std::unique_ptr<PutBuffer> Filled(const BlockKey& key, size_t size) {
    auto buffer = client_->NewPutBuffer(size);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    if (!buffer.ok()) return nullptr;
    const std::string payload = PayloadFor(key, size);
    std::memcpy((*buffer)->data(), payload.data(), size);
    return std::move(*buffer);
  }

  const std::string ns_ = TestSchema().NamespaceName();
  std::unique_ptr<Client> client_;
};

TEST_F(E2ePutBufferTest, BlocksInPutBuffersArePutWhereTheyLieByteExact) {
  const std::vector<BlockKey> chain = TestChain(1, 3);
  constexpr size_t kBytes = 150000;
  std::vector<std::unique_ptr<PutBuffer>> buffers;
  std::vector<PutBlock> blocks;
  for (const BlockKey& key : chain) {
    buffers.push_back(Filled(key, kBytes));
    ASSERT_NE(buffers.back(), nullptr);
    blocks.push_back({key, {}, {buffers.back()->data(), kBytes}});
  }
  auto put = client_->Put(ns_, BlockKey(), blocks);
  ASSERT_TRUE(put.ok()) << put.status();
  for (v1::PutOutcome o : *put) EXPECT_EQ(o, v1::PUT_STORED);
  EXPECT_EQ(client_->LocalPath()->in_place_puts(), 3u);

  // The daemon copied them: overwriting the buffers changes nothing cached.
  for (auto& b : buffers) std::memset(b->data(), 0xee, kBytes);
  size_t got = 0;
  const std::vector<std::string> out = FetchAll(*client_, ns_, chain, kBytes, &got);
  ASSERT_EQ(got, 3u);
  for (size_t i = 0; i < got; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], kBytes)) << i;

  // A part of a buffer is a payload too.
  const BlockKey part = TestChain(2, 1)[0];
  const std::string payload = PayloadFor(part, 1000);
  std::memcpy(buffers[1]->data() + 4097, payload.data(), payload.size());
  put = client_->Put(ns_, BlockKey(), {PutBlock{part, {}, {buffers[1]->data() + 4097, 1000}}});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*put)[0], v1::PUT_STORED);
  EXPECT_EQ(FetchAll(*client_, ns_, {part}, 1000, &got)[0], payload);
  EXPECT_EQ(client_->counters().local_path_fallbacks, 0u);
}

TEST_F(E2ePutBufferTest, BuffersHoldAtMostHalfTheStagingSpace) {
  auto half = client_->NewPutBuffer(kStaging / 2);
  ASSERT_TRUE(half.ok()) << half.status();
  auto more = client_->NewPutBuffer(4096);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kResourceExhausted) << more.status();
  EXPECT_NE(more.status().message().find("half"), std::string::npos) << more.status();
  half->reset();  // given back
  EXPECT_TRUE(client_->NewPutBuffer(4096).ok());
  EXPECT_EQ(client_->NewPutBuffer(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(E2ePutBufferTest, ABlockThatFitsOnlyWhereBuffersAreGoesOverTheNetwork) {
  // Buffers hold the middle of the space, so no free range takes 600 KB.
  auto low = client_->NewPutBuffer(200 << 10);
  auto high = client_->NewPutBuffer(300 << 10);
  ASSERT_TRUE(low.ok() && high.ok());
  low->reset();
  const BlockKey key = TestChain(3, 1)[0];
  auto put = client_->Put(ns_, BlockKey(), TestPayloads({key}, 600000));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*put)[0], v1::PUT_STORED);
  size_t got = 0;
  EXPECT_EQ(FetchAll(*client_, ns_, {key}, 600000, &got)[0], PayloadFor(key, 600000));
  // Without the buffer it fits again, on this host.
  high->reset();
  const BlockKey next = TestChain(4, 1)[0];
  const uint64_t blocks_before = client_->counters().local_path_blocks;
  put = client_->Put(ns_, BlockKey(), TestPayloads({next}, 600000));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(client_->counters().local_path_blocks, blocks_before + 1);
}

TEST_F(E2ePutBufferTest, WithoutASameHostPathThereAreNoPutBuffers) {
  ClientOptions remote = TestClientOptions(daemon_->address());
  remote.use_local_path = false;
  auto client = Client::Create(remote);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->NewPutBuffer(4096).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace kvcache
