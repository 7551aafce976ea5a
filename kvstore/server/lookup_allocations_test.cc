// A Lookup of a cached chain allocates nothing per key, on the daemon's side
// or the client's: the index re-keys its recency nodes in place, both
// sides keep the messages on an arena that starts on the stack, and the
// client packs the keys into one field. Counted with a replaced global
// operator new around whole calls through a real gRPC server in this
// process: a 128-key lookup may cost a few allocations more than a 64-key
// one (gRPC's buffers grow with the message), never one per key. A
// deterministic count, not a timing.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/client.h"
#include "key/checksum.h"
#include "key/key_schema.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kvstore/store/block_store.h"
#include "kvstore/server/kvcache_service.h"
#include "kvstore/server/service_context.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Every form of new and delete is replaced, so that all of them pair with
// malloc and free (under ASan, a form left to the runtime would allocate
// its way and be freed ours).
namespace {
void* Counted(size_t n, size_t align = 0) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  n = n == 0 ? 1 : n;
  return align == 0 ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
}
void* OrThrow(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) { return OrThrow(Counted(n)); }
void* operator new[](size_t n) { return OrThrow(Counted(n)); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return Counted(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return Counted(n); }
void* operator new(size_t n, std::align_val_t a) {
  return OrThrow(Counted(n, static_cast<size_t>(a)));
}
void* operator new[](size_t n, std::align_val_t a) {
  return OrThrow(Counted(n, static_cast<size_t>(a)));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }

namespace kvcache {
namespace {

class LookupAllocationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BlockStore::Options o;
    o.arena.capacity_bytes = 8 << 20;
    o.arena.page_bytes = 4096;
    o.arena.prefault = false;
    auto store = BlockStore::Create(o);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    context_.reset(new ServiceContext{*store_, ServiceLimits{}, absl::Now()});
    service_ = std::make_unique<KvCacheService>(*context_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(port);
    options.use_local_path = false;
    options.use_data_port = false;
    auto client = Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);

    schema_.model_id = "lookup-allocations";
    std::vector<uint32_t> tokens(16 * 256);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint32_t>(i);
    chain_ = *ChainKeys(schema_, tokens);
    const NamespaceId ns = *store_->namespaces().Intern(kDefaultTenant, schema_.NamespaceName());
    const std::vector<uint8_t> bytes(1024, 7);
    for (size_t i = 0; i < chain_.size(); ++i) {
      absl::StatusOr<PageRun> pages = store_->AllocateEvicting(bytes.size());
      ASSERT_TRUE(pages.ok());
      pages->Write(0, bytes);
      BlockMeta meta;
      meta.key = chain_[i];
      if (i > 0) meta.parent = chain_[i - 1];
      meta.size = bytes.size();
      meta.checksum = BlockChecksum(bytes);
      ASSERT_EQ(store_->index().Insert(ns, meta, *std::move(pages)), InsertOutcome::kStored);
    }
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) server_->Shutdown();
  }

  // The fewest allocations of five Lookups of the chain's first `keys` keys
  // (each a full hit), from the call to its answer.
  uint64_t AllocationsOfLookup(size_t keys) {
    const absl::Span<const BlockKey> chain(chain_.data(), keys);
    const std::string ns = schema_.NamespaceName();
    uint64_t fewest = UINT64_MAX;
    for (int round = 0; round < 5; ++round) {
      const uint64_t before = g_allocations.load();
      const LookupResult r = client_->Lookup(ns, chain);
      const uint64_t used = g_allocations.load() - before;
      EXPECT_TRUE(r.status.ok()) << r.status;
      EXPECT_EQ(r.hits, keys);
      fewest = std::min(fewest, used);
    }
    return fewest;
  }

  std::unique_ptr<BlockStore> store_;
  std::unique_ptr<ServiceContext> context_;
  std::unique_ptr<KvCacheService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
  KeySchema schema_;
  std::vector<BlockKey> chain_;
};

TEST_F(LookupAllocationsTest, ACachedChainCostsNoAllocationPerKey) {
  AllocationsOfLookup(1);  // the first call also asks Hello and connects
  const uint64_t of_64 = AllocationsOfLookup(64);
  const uint64_t of_128 = AllocationsOfLookup(128);
  std::cout << "allocations per lookup: 64 keys " << of_64 << ", 128 keys " << of_128 << "\n";
  // 64 more keys: a few more of gRPC's buffers at most, not 64 of anything.
  EXPECT_LE(of_128, of_64 + 8);
}

}  // namespace
}  // namespace kvcache
