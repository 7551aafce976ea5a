// Every kind of bad input gets a clear status, and leaves nothing behind:
// afterwards Stats shows no pinned and no staged bytes.
#include "absl/time/clock.h"
#include "key/checksum.h"
#include "gtest/gtest.h"
#include "tools/daemon_process.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

class E2eBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=64MiB", "--page_size=64KiB",
                                   "--max_message_size=1MiB", "--max_block_size=8MiB",
                                   "--client_stall_timeout_s=1", "--connection_share=1"});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    stub_ = v1::KvCache::NewStub(
        grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    v1::StatsResponse stats = AwaitNothingPinnedOrStaged(*stub_);
    EXPECT_EQ(stats.pinned_bytes(), 0u);
    EXPECT_EQ(stats.staged_bytes(), 0u);
  }

  v1::PutRequest Header(const std::string& key, uint64_t size, const std::string& data,
                        uint64_t checksum) {
    v1::PutRequest r;
    r.mutable_header()->set_namespace_(ns_);
    r.mutable_header()->set_key(key);
    r.mutable_header()->set_size(size);
    r.mutable_header()->set_checksum(checksum);
    r.set_data(data);
    return r;
  }

  // Sends `messages` as one Put stream and returns the final status.
  grpc::Status PutStream(const std::vector<v1::PutRequest>& messages,
                         v1::PutResponse* response = nullptr) {
    grpc::ClientContext ctx;
    v1::PutResponse local;
    auto writer = stub_->Put(&ctx, response ? response : &local);
    for (const auto& m : messages) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  const std::string ns_ = TestSchema().NamespaceName();
  const std::string key_ = std::string(32, 'k');
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
};

TEST_F(E2eBadInputTest, BadKeysInLookup) {
  for (const std::string& bad : {std::string(), std::string(33, 'x')}) {
    grpc::ClientContext ctx;
    v1::LookupRequest req;
    req.set_namespace_(ns_);
    req.add_keys(key_);
    req.add_keys(bad);
    v1::LookupResponse resp;
    grpc::Status s = stub_->Lookup(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("key 1"), std::string::npos) << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::LookupRequest req;  // no namespace
  req.add_keys(key_);
  v1::LookupResponse resp;
  EXPECT_EQ(stub_->Lookup(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// The packed form of a lookup's chain (one field of fixed-size keys): a run
// that is not whole keys, a key size out of range, or both forms at once are
// refused with the reason; a good one answers like `keys`.
TEST_F(E2eBadInputTest, BadPackedKeysInLookup) {
  struct Case {
    std::string packed;
    uint32_t key_size;
    bool also_keys;
    const char* says;
  };
  for (const Case& c : {Case{std::string(40, 'k'), 32, false, "not whole keys"},
                        Case{std::string(33, 'k'), 33, false, "not whole keys"},
                        Case{std::string(32, 'k'), 0, false, "not whole keys"},
                        Case{std::string(32, 'k'), 32, true, "not both"}}) {
    grpc::ClientContext ctx;
    v1::LookupRequest req;
    req.set_namespace_(ns_);
    req.set_packed_keys(c.packed);
    req.set_packed_key_size(c.key_size);
    if (c.also_keys) req.add_keys(key_);
    v1::LookupResponse resp;
    grpc::Status s = stub_->Lookup(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.says;
    EXPECT_NE(s.error_message().find(c.says), std::string::npos) << s.error_message();
  }
  grpc::ClientContext hctx;
  v1::HelloResponse hello;
  ASSERT_TRUE(stub_->Hello(&hctx, {}, &hello).ok());
  EXPECT_TRUE(hello.packed_lookup());
  grpc::ClientContext ctx;
  v1::LookupRequest req;
  req.set_namespace_(ns_);
  req.set_packed_keys(std::string(64, 'k'));
  req.set_packed_key_size(32);
  v1::LookupResponse resp;
  ASSERT_TRUE(stub_->Lookup(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.hit_count(), 0u);  // nothing stored: an answer, not an error
}

// A lookup answers in the form it was asked: per-key BlockLocations for
// `keys`, the packed sizes and tiers for `packed_keys`, with the same hits.
TEST_F(E2eBadInputTest, PackedAndPlainLookupsGiveTheSameAnswer) {
  std::string parent;
  std::vector<std::string> chain;
  for (int i = 0; i < 3; ++i) {
    const std::string key(32, static_cast<char>('a' + i));
    const std::string data(1000 + i, static_cast<char>('0' + i));
    v1::PutRequest header = Header(key, data.size(), data,
        BlockChecksum({reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
    header.mutable_header()->set_parent_key(parent);
    ASSERT_TRUE(PutStream({header}).ok());
    chain.push_back(key);
    parent = key;
  }
  chain.push_back(std::string(32, 'z'));  // not cached: the answer stops before it
  grpc::ClientContext plain_ctx;
  v1::LookupRequest plain;
  plain.set_namespace_(ns_);
  for (const std::string& k : chain) plain.add_keys(k);
  v1::LookupResponse plain_resp;
  ASSERT_TRUE(stub_->Lookup(&plain_ctx, plain, &plain_resp).ok());
  grpc::ClientContext packed_ctx;
  v1::LookupRequest packed;
  packed.set_namespace_(ns_);
  for (const std::string& k : chain) packed.mutable_packed_keys()->append(k);
  packed.set_packed_key_size(32);
  v1::LookupResponse packed_resp;
  ASSERT_TRUE(stub_->Lookup(&packed_ctx, packed, &packed_resp).ok());
  EXPECT_EQ(plain_resp.hit_count(), 3u);
  EXPECT_EQ(packed_resp.hit_count(), 3u);
  ASSERT_EQ(plain_resp.blocks_size(), 3);
  EXPECT_EQ(plain_resp.packed_sizes_size(), 0);
  EXPECT_EQ(packed_resp.blocks_size(), 0);
  ASSERT_EQ(packed_resp.packed_sizes_size(), 3);
  ASSERT_EQ(packed_resp.packed_tiers().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(plain_resp.blocks(i).size(), 1000u + i);
    EXPECT_EQ(packed_resp.packed_sizes(i), 1000u + i);
    EXPECT_EQ(plain_resp.blocks(i).tier(), v1::TIER_HOST);
    EXPECT_EQ(packed_resp.packed_tiers()[i], static_cast<char>(v1::TIER_HOST));
  }
}

TEST_F(E2eBadInputTest, BadPutHeaders) {
  EXPECT_EQ(PutStream({Header("", 1, "x", 0)}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(PutStream({Header(std::string(33, 'k'), 1, "x", 0)}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(PutStream({Header(key_, 0, "", 0)}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(PutStream({Header(key_, 9 << 20, "", 0)}).error_code(),  // > --max_block_size
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::PutRequest data_only;
  data_only.set_data("x");
  EXPECT_EQ(PutStream({data_only}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(E2eBadInputTest, OversizedMessageIsRejected) {
  const std::string big(2 << 20, 'b');  // over --max_message_size=1MiB
  grpc::Status s = PutStream({Header(key_, big.size(), big, 0)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(E2eBadInputTest, ChunkBeyondDeclaredSize) {
  const std::string ten = "0123456789";
  const uint64_t sum = BlockChecksum({reinterpret_cast<const uint8_t*>(ten.data()), ten.size()});
  v1::PutRequest first = Header(key_, 20, ten, sum);
  v1::PutRequest second;
  second.set_data(std::string(11, 'z'));  // 10 + 11 > 20
  grpc::Status s = PutStream({first, second});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("declared size"), std::string::npos) << s.error_message();
}

TEST_F(E2eBadInputTest, ChecksumMismatchIsDataLossAndNotVisible) {
  const std::string data(5000, 'd');
  const uint64_t sum = BlockChecksum({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  grpc::Status s = PutStream({Header(key_, data.size(), data, sum + 1)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  grpc::ClientContext ctx;
  v1::InspectRequest req;
  req.set_namespace_(ns_);
  req.set_key(key_);
  v1::InspectResponse resp;
  EXPECT_EQ(stub_->Inspect(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(E2eBadInputTest, StreamEndingMidBlock) {
  grpc::Status s = PutStream({Header(key_, 100, "only half", 0)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_F(E2eBadInputTest, AbandonedPutStreamFreesItsStaging) {
  grpc::ClientContext ctx;
  v1::PutResponse resp;
  auto writer = stub_->Put(&ctx, &resp);
  ASSERT_TRUE(writer->Write(Header(key_, 4 << 20, std::string(512 << 10, 'a'), 0)));
  // Wait until the daemon holds staging pages for the bytes sent (only
  // those: pages are taken as bytes arrive), then walk away.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  v1::StatsResponse stats;
  do {
    grpc::ClientContext sctx;
    ASSERT_TRUE(stub_->Stats(&sctx, {}, &stats).ok());
  } while (stats.staged_bytes() == 0 && absl::Now() < give_up);
  EXPECT_EQ(stats.staged_bytes(), 512u << 10);
  ctx.TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // TearDown checks that the staged bytes went back to zero.
}

TEST_F(E2eBadInputTest, ClientGoneMidFetchReleasesPins) {
  // Chunks under this daemon's 1 MiB message limit.
  ClientOptions options = TestClientOptions(daemon_->address());
  options.chunk_bytes = 512 << 10;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<BlockKey> chain = TestChain(9, 1);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 6 << 20)).ok());
  grpc::ClientContext ctx;
  v1::FetchRequest req;
  req.set_namespace_(ns_);
  req.add_items()->set_key(chain[0].ToBytes());
  req.set_max_chunk_bytes(64 << 10);
  auto reader = stub_->Fetch(&ctx, req);
  v1::FetchChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  EXPECT_EQ(chunk.data().size(), 64u << 10);
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// A put stream that stops sending in the middle of a block is ended by the
// daemon (not left open for as long as the client likes), and its staging
// goes back.
TEST_F(E2eBadInputTest, PutStalledMidBlockIsCutOffAfterTheStallTimeout) {
  grpc::ClientContext ctx;
  v1::PutResponse resp;
  auto writer = stub_->Put(&ctx, &resp);
  ASSERT_TRUE(writer->Write(Header(key_, 4 << 20, std::string(512 << 10, 'a'), 0)));
  const absl::Time start = absl::Now();
  const grpc::Status s = writer->Finish();  // sends nothing more
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_NE(s.error_message().find("--client_stall_timeout_s"), std::string::npos);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  // TearDown checks that the staged bytes went back to zero.
}

// A fetch whose reader stops reading is cancelled by the daemon once it
// has waited the stall timeout, so the client cannot hold pins by not reading.
TEST_F(E2eBadInputTest, FetchReaderThatStopsReadingIsCutOff) {
  ClientOptions options = TestClientOptions(daemon_->address());
  options.chunk_bytes = 512 << 10;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<BlockKey> chain = TestChain(11, 8);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 6 << 20)).ok());
  // A connection of its own, so Stats on stub_ is not queued behind it.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto own = v1::KvCache::NewStub(grpc::CreateCustomChannel(
      daemon_->address(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  v1::FetchRequest req;
  req.set_namespace_(ns_);
  for (const BlockKey& k : chain) req.add_items()->set_key(k.ToBytes());
  req.set_max_chunk_bytes(64 << 10);
  auto reader = own->Fetch(&ctx, req);
  v1::FetchChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  // 48 MiB asked for, one chunk read: the daemon is stuck writing.
  const v1::StatsResponse freed = AwaitNothingPinnedOrStaged(*stub_);
  EXPECT_EQ(freed.pinned_bytes(), 0u);
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(E2eBadInputTest, UnknownKeys) {
  grpc::ClientContext ctx;
  v1::FetchRequest req;
  req.set_namespace_(ns_);
  req.add_items()->set_key(key_);
  auto reader = stub_->Fetch(&ctx, req);
  v1::FetchChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("not cached"), std::string::npos);

  grpc::ClientContext ectx;
  v1::EvictRequest ereq;
  ereq.mutable_key()->set_namespace_(ns_);
  ereq.mutable_key()->set_key(key_);
  v1::EvictResponse eresp;
  EXPECT_EQ(stub_->Evict(&ectx, ereq, &eresp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext nctx;
  v1::EvictRequest nothing;
  EXPECT_EQ(stub_->Evict(&nctx, nothing, &eresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A put whose parent is not cached is reported per block, and not stored.
  v1::PutRequest orphan = Header(key_, 3, "abc", 0);
  orphan.mutable_header()->set_parent_key(std::string(32, 'p'));
  v1::PutResponse resp;
  ASSERT_TRUE(PutStream({orphan}, &resp).ok());
  ASSERT_EQ(resp.outcomes_size(), 1);
  EXPECT_EQ(resp.outcomes(0), v1::PUT_PARENT_MISSING);
}

}  // namespace
}  // namespace kvcache
