// The C ABI against a real kvstored: options, a miss, a put from caller
// memory, a hit, a byte-exact fetch into caller memory, and the key schema
// answering as the C++ one does.
#include "client/c_api/kvcache_c.h"

#include <cstring>
#include <string>
#include <vector>

#include "key/key_schema.h"
#include "gtest/gtest.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

constexpr char kSchema[] =
    "model_id=c-api/test\nweights_revision=r1\nkv_dtype=fp32\nlayout=nhd\ntokens_per_block=4\n";

KeySchema CppSchema() {
  KeySchema s;
  s.model_id = "c-api/test";
  s.weights_revision = "r1";
  s.kv_dtype = "fp32";
  s.layout = "nhd";
  s.tokens_per_block = 4;
  return s;
}

TEST(KvcacheCSchemaTest, NamespaceAndChainKeysMatchTheCppLibrary) {
  char ns[256], error[256];
  ASSERT_GT(kvc_schema_namespace(kSchema, ns, sizeof(ns), error, sizeof(error)), 0) << error;
  EXPECT_EQ(std::string(ns), CppSchema().NamespaceName());
  std::vector<uint32_t> tokens(10);
  for (uint32_t i = 0; i < tokens.size(); ++i) tokens[i] = 1000 + i;
  std::vector<uint8_t> keys(32 * 4);
  ASSERT_EQ(kvc_chain_keys(kSchema, tokens.data(), tokens.size(), keys.data(), 4, error,
                           sizeof(error)),
            2)  // a trailing partial block has no key
      << error;
  auto want = ChainKeys(CppSchema(), tokens);
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(want->size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(std::memcmp(keys.data() + 32 * i, (*want)[i].data(), 32), 0);
  // Too little room, an unknown field, an invalid schema: -1 and a message.
  EXPECT_EQ(kvc_chain_keys(kSchema, tokens.data(), tokens.size(), keys.data(), 1, error,
                           sizeof(error)),
            -1);
  EXPECT_NE(std::string(error).find("room for 1"), std::string::npos) << error;
  EXPECT_EQ(kvc_schema_namespace("model_id=m\ncolour=blue\n", ns, sizeof(ns), error, sizeof(error)),
            -1);
  EXPECT_NE(std::string(error).find("colour"), std::string::npos) << error;
  EXPECT_EQ(kvc_schema_namespace("weights_revision=r\n", ns, sizeof(ns), error, sizeof(error)), -1);
  EXPECT_NE(std::string(error), "");
}

TEST(KvcacheCClientTest, BadOptionsAreRefusedWithTheirName) {
  char error[256];
  EXPECT_EQ(kvc_client_create("127.0.0.1:1", "use_local_path=0\nspeed=11\n", error, sizeof(error)),
            nullptr);
  EXPECT_NE(std::string(error).find("speed"), std::string::npos) << error;
  EXPECT_EQ(kvc_client_create("127.0.0.1:1", "fetch_streams=many", error, sizeof(error)), nullptr);
  EXPECT_NE(std::string(error).find("fetch_streams"), std::string::npos) << error;
}

class KvcacheCDaemonTest : public ::testing::TestWithParam<const char*> {};

TEST_P(KvcacheCDaemonTest, PutLookupAndFetchThroughCallerMemory) {
  auto daemon = DaemonProcess::Start("kvstore/kvstored", {"--host_capacity=64MiB"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  char error[512];
  kvc_client* c = kvc_client_create((*daemon)->address().c_str(), GetParam(), error, sizeof(error));
  ASSERT_NE(c, nullptr) << error;
  char ns[256];
  ASSERT_GT(kvc_schema_namespace(kSchema, ns, sizeof(ns), error, sizeof(error)), 0);
  std::vector<uint32_t> tokens(12);
  for (uint32_t i = 0; i < tokens.size(); ++i) tokens[i] = 7 * i;
  std::vector<uint8_t> keys(32 * 3);
  ASSERT_EQ(kvc_chain_keys(kSchema, tokens.data(), tokens.size(), keys.data(), 3, error,
                           sizeof(error)),
            3);
  const uint32_t lens[3] = {32, 32, 32};
  uint64_t sizes[3] = {0, 0, 0};
  int32_t tiers[3] = {0, 0, 0};
  EXPECT_EQ(kvc_lookup(c, ns, keys.data(), lens, 3, sizes, tiers, error, sizeof(error)), 0);
  EXPECT_STREQ(error, "");

  constexpr size_t kBlock = 256 << 10;
  std::vector<std::vector<uint8_t>> blocks(3, std::vector<uint8_t>(kBlock));
  for (size_t b = 0; b < 3; ++b) {
    for (size_t i = 0; i < kBlock; ++i) blocks[b][i] = static_cast<uint8_t>(i * 31 + b * 7);
  }
  const void* srcs[3] = {blocks[0].data(), blocks[1].data(), blocks[2].data()};
  const uint64_t block_sizes[3] = {kBlock, kBlock, kBlock};
  int32_t outcomes[3] = {0, 0, 0};
  ASSERT_EQ(kvc_put_from(c, ns, nullptr, 0, keys.data(), lens, 3, srcs, block_sizes, 0, outcomes,
                         error, sizeof(error)),
            3)
      << error;
  EXPECT_EQ(kvc_lookup(c, ns, keys.data(), lens, 3, sizes, tiers, error, sizeof(error)), 3)
      << error;
  EXPECT_EQ(sizes[2], kBlock);
  EXPECT_EQ(tiers[0], 2);  // TIER_HOST

  std::vector<std::vector<uint8_t>> got(3, std::vector<uint8_t>(kBlock, 0));
  void* dests[3] = {got[0].data(), got[1].data(), got[2].data()};
  EXPECT_EQ(kvc_fetch_into(c, ns, keys.data(), lens, 3, dests, block_sizes, error, sizeof(error)),
            3)
      << error;
  EXPECT_EQ(got, blocks);
  // A chain of the first block and a key never stored: one hit.
  std::vector<uint8_t> mixed(keys.begin(), keys.begin() + 32);
  mixed.insert(mixed.end(), 32, 0xab);
  EXPECT_EQ(kvc_lookup(c, ns, mixed.data(), lens, 2, sizes, nullptr, error, sizeof(error)), 1);
  // Bad arguments are -1 with a message, and nothing is sent.
  const uint32_t bad_lens[1] = {33};
  EXPECT_EQ(kvc_lookup(c, ns, keys.data(), bad_lens, 1, sizes, nullptr, error, sizeof(error)), -1);
  EXPECT_NE(std::string(error), "");
  void* null_dest[1] = {nullptr};
  EXPECT_EQ(kvc_fetch_into(c, ns, keys.data(), lens, 1, null_dest, block_sizes, error,
                           sizeof(error)),
            -1);
  kvc_client_destroy(c);
}

INSTANTIATE_TEST_SUITE_P(Paths, KvcacheCDaemonTest,
                         ::testing::Values("", "use_local_path=0\n",
                                           "use_local_path=0\nuse_data_port=0\ndeadline_s=60\n"));

}  // namespace
}  // namespace kvcache
