// End to end against a real kvstored: store a chain, find its prefix, fetch
// exact bytes, byte ranges, operator eviction and listing, clean shutdown.
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tools/daemon_process.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

class E2eBasicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=256MiB", "--page_size=64KiB"});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    auto c = Client::Create(TestClientOptions(daemon_->address()));
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
    stub_ = v1::KvCache::NewStub(
        grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  }

  v1::StatsResponse Stats() {
    grpc::ClientContext ctx;
    v1::StatsResponse r;
    EXPECT_TRUE(stub_->Stats(&ctx, {}, &r).ok());
    return r;
  }

  const std::string ns_ = TestSchema().NamespaceName();
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
};

TEST_F(E2eBasicTest, ChainOf64StoredFoundAndFetchedExactly) {
  const size_t kBlock = 100 * 1024 + 17;  // not page-aligned on purpose
  std::vector<BlockKey> chain = TestChain(1, 64);
  auto outcomes = client_->Put(ns_, BlockKey(), TestPayloads(chain, kBlock));
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  ASSERT_EQ(outcomes->size(), 64u);
  for (v1::PutOutcome o : *outcomes) EXPECT_EQ(o, v1::PUT_STORED);

  std::vector<BlockKey> longer = TestChain(1, 80);  // same first 64 blocks
  LookupResult hit = client_->Lookup(ns_, longer);
  ASSERT_TRUE(hit.status.ok()) << hit.status;
  EXPECT_EQ(hit.hits, 64u);
  EXPECT_EQ(hit.sizes, std::vector<uint64_t>(64, kBlock));

  // A client that spreads fetches of 1 MiB or more over 4 streams.
  ClientOptions spread = TestClientOptions(daemon_->address());
  spread.split_fetch_bytes = 1 << 20;
  auto spreading = Client::Create(spread);
  ASSERT_TRUE(spreading.ok());
  std::vector<std::string> out(64, std::string(kBlock, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < 64; ++i) {
    targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(out[i].data()), kBlock)});
  }
  FetchResult fetched = (*spreading)->Fetch(ns_, targets);
  ASSERT_TRUE(fetched.status.ok()) << fetched.status;
  EXPECT_EQ(fetched.blocks, 64u);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], kBlock)) << i;
  EXPECT_EQ(Stats().fetches(), 4u);  // one request per stream

  // From token ids: the client hashes them with the schema first.
  std::vector<uint32_t> tokens(80 * TestSchema().tokens_per_block);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = 1 * 1000003u + static_cast<uint32_t>(i);
  EXPECT_EQ(client_->LookupTokens(TestSchema(), tokens).hits, 64u);
  KeySchema other = TestSchema();
  other.kv_dtype = "fp8";  // another schema: another namespace, another chain
  EXPECT_EQ(client_->LookupTokens(other, tokens).hits, 0u);

  // The same keys in another namespace are a different cache.
  EXPECT_EQ(client_->Lookup(ns_ + "x", chain).hits, 0u);
  v1::StatsResponse stats = Stats();
  EXPECT_EQ(stats.tiers(1).blocks(), 64u);
  EXPECT_EQ(stats.pinned_bytes(), 0u);
  EXPECT_EQ(stats.staged_bytes(), 0u);
}

TEST_F(E2eBasicTest, ByteRangesAndPartialHits) {
  std::vector<BlockKey> chain = TestChain(2, 4);
  ASSERT_TRUE(client_->Put(ns_, BlockKey(), TestPayloads(chain, 300000)).ok());
  // A layer-sized slice from the middle of block 2.
  std::string slice(70000, '\0');
  FetchTarget t{chain[2], absl::MakeSpan(reinterpret_cast<uint8_t*>(slice.data()), slice.size()),
                123456};
  FetchResult r = client_->Fetch(ns_, {&t, 1});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.blocks, 1u);
  EXPECT_EQ(slice, PayloadFor(chain[2], 300000).substr(123456, 70000));
  // Past the end of the block: OUT_OF_RANGE.
  t.offset = 250000;
  r = client_->Fetch(ns_, {&t, 1});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(r.blocks, 0u);
  // A fetch stops at the first uncached block, and says so by its count.
  std::vector<BlockKey> more = TestChain(2, 6);
  std::vector<std::string> bufs(6, std::string(300000, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < 6; ++i) {
    targets.push_back({more[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), 300000)});
  }
  r = client_->Fetch(ns_, targets);
  EXPECT_EQ(r.blocks, 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(bufs[i], PayloadFor(chain[i], 300000));
}

TEST_F(E2eBasicTest, EvictListAndInspect) {
  std::vector<BlockKey> a = TestChain(3, 5);
  std::vector<BlockKey> b = TestChain(4, 3);
  ASSERT_TRUE(client_->Put(ns_, BlockKey(), TestPayloads(a, 1000)).ok());
  ASSERT_TRUE(client_->Put(ns_, BlockKey(), TestPayloads(b, 1000)).ok());

  grpc::ClientContext lctx;
  v1::ListRequest lreq;
  lreq.set_page_size(1);
  v1::ListResponse page1;
  ASSERT_TRUE(stub_->List(&lctx, lreq, &page1).ok());
  ASSERT_EQ(page1.prefixes_size(), 1);
  ASSERT_FALSE(page1.next_page_token().empty());
  grpc::ClientContext lctx2;
  lreq.set_page_token(page1.next_page_token());
  v1::ListResponse page2;
  ASSERT_TRUE(stub_->List(&lctx2, lreq, &page2).ok());
  ASSERT_EQ(page2.prefixes_size(), 1);
  EXPECT_TRUE(page2.next_page_token().empty());
  uint32_t depths = page1.prefixes(0).depth() + page2.prefixes(0).depth();
  EXPECT_EQ(depths, 8u);
  EXPECT_EQ(page1.prefixes(0).leaves() + page2.prefixes(0).leaves(), 2u);
  // A branch off chain a: its root now has two leaves.
  std::vector<BlockKey> branch = {*BlockKey::FromBytes(std::string(32, 'b'))};
  ASSERT_TRUE(client_->Put(ns_, a[1], TestPayloads(branch, 1000)).ok());
  grpc::ClientContext lctx3;
  v1::ListRequest one_ns;
  one_ns.set_namespace_(ns_);
  v1::ListResponse all_rows;
  ASSERT_TRUE(stub_->List(&lctx3, one_ns, &all_rows).ok());
  for (const v1::PrefixInfo& p : all_rows.prefixes()) {
    if (p.root_key() == a[0].ToBytes()) {
      EXPECT_EQ(p.leaves(), 2u);
      EXPECT_EQ(p.blocks(), 6u);
    }
  }

  grpc::ClientContext ictx;
  v1::InspectRequest ireq;
  ireq.set_namespace_(ns_);
  ireq.set_key(a[2].ToBytes());
  v1::InspectResponse info;
  ASSERT_TRUE(stub_->Inspect(&ictx, ireq, &info).ok());
  EXPECT_EQ(info.depth(), 3u);
  EXPECT_EQ(info.parent_key(), a[1].ToBytes());
  EXPECT_EQ(info.root_key(), a[0].ToBytes());
  EXPECT_EQ(info.children(), 1u);

  auto evict = [&](v1::EvictRequest req, v1::EvictResponse* resp) {
    grpc::ClientContext ctx;
    return stub_->Evict(&ctx, req, resp);
  };
  v1::EvictRequest req;
  req.mutable_key()->set_namespace_(ns_);
  req.mutable_key()->set_key(a[2].ToBytes());
  v1::EvictResponse resp;
  EXPECT_EQ(evict(req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  req.mutable_subtree()->set_namespace_(ns_);
  req.mutable_subtree()->set_key(a[2].ToBytes());
  req.set_dry_run(true);
  ASSERT_TRUE(evict(req, &resp).ok());
  EXPECT_EQ(resp.blocks(), 3u);
  EXPECT_EQ(client_->Lookup(ns_, a).hits, 5u);  // dry run dropped nothing
  req.set_dry_run(false);
  ASSERT_TRUE(evict(req, &resp).ok());
  EXPECT_EQ(resp.bytes(), 3000u);
  EXPECT_EQ(client_->Lookup(ns_, a).hits, 2u);
  req.mutable_subtree()->set_key(branch[0].ToBytes());
  ASSERT_TRUE(evict(req, &resp).ok());
  v1::EvictRequest all;
  all.set_all(true);
  ASSERT_TRUE(evict(all, &resp).ok());
  EXPECT_EQ(resp.blocks(), 5u);  // a[0], a[1] and chain b
  EXPECT_EQ(client_->Lookup(ns_, b).hits, 0u);
  EXPECT_EQ(Stats().tiers(1).used_bytes(), 0u);
}

TEST_F(E2eBasicTest, PutAsyncStoresInTheBackgroundAndDropsOverBudget) {
  std::vector<BlockKey> chain = TestChain(6, 8);
  EXPECT_TRUE(client_->PutAsync(ns_, BlockKey(), TestPayloads(chain, 50000)));
  client_->Flush();
  EXPECT_EQ(client_->Lookup(ns_, chain).hits, 8u);
  EXPECT_EQ(client_->counters().puts_sent, 8u);

  ClientOptions small = TestClientOptions(daemon_->address());
  small.max_inflight_put_bytes = 100000;
  auto tight = Client::Create(small);
  ASSERT_TRUE(tight.ok());
  std::vector<BlockKey> big = TestChain(7, 3);
  const absl::Time start = absl::Now();
  EXPECT_FALSE((*tight)->PutAsync(ns_, BlockKey(), TestPayloads(big, 40000)));  // 120 KB
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));  // dropped, not waited for
  EXPECT_EQ((*tight)->counters().puts_dropped, 3u);
  EXPECT_TRUE((*tight)->PutAsync(ns_, BlockKey(), TestPayloads({big[0]}, 40000)));
  (*tight)->Flush();
  EXPECT_EQ(client_->Lookup(ns_, big).hits, 1u);
}

TEST_F(E2eBasicTest, HealthAndReflectionAreOn) {
  auto channel = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
  // grpc.reflection.v1alpha: list_services (field 7) = "".
  grpc::ClientContext ctx;
  const grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &ctx));
  grpc::Slice list_services("\x3a\x00", 2);
  ASSERT_TRUE(stream->Write(grpc::ByteBuffer(&list_services, 1)));
  stream->WritesDone();
  grpc::ByteBuffer reply;
  ASSERT_TRUE(stream->Read(&reply));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (auto& piece : slices) bytes.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
  EXPECT_NE(bytes.find("kvcache.v1.KvCache"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(E2eBasicTest, SigtermDrainsAndExitsCleanly) {
  ASSERT_TRUE(client_->Put(ns_, BlockKey(), TestPayloads(TestChain(5, 2), 1000)).ok());
  EXPECT_EQ(daemon_->Stop(), 0);
  // A daemon that is gone is a miss, not a crash or a hang.
  LookupResult r = client_->Lookup(ns_, TestChain(5, 2));
  EXPECT_EQ(r.hits, 0u);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client_->counters().lookup_errors, 1u);
}

}  // namespace
}  // namespace kvcache
