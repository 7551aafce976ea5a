#include "key/key_schema.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kvcache {
namespace {

KeySchema SchemaFromJson(const nlohmann::json& j) {
  KeySchema s;
  s.model_id = j.at("model_id");
  s.weights_revision = j.value("weights_revision", "");
  s.tokenizer = j.value("tokenizer", "");
  s.kv_dtype = j.value("kv_dtype", "bf16");
  s.layout = j.value("layout", "nhd");
  s.tokens_per_block = j.value("tokens_per_block", 16u);
  s.geometry_independent = j.value("geometry_independent", false);
  s.tp_rank = j.value("tp_rank", 0u);
  s.tp_size = j.value("tp_size", 1u);
  s.pp_rank = j.value("pp_rank", 0u);
  s.pp_size = j.value("pp_size", 1u);
  s.lora_id = j.value("lora_id", "");
  s.lora_version = j.value("lora_version", "");
  s.extra_keys = j.value("extra_keys", std::vector<std::string>{});
  return s;
}

nlohmann::json LoadVectors() {
  std::ifstream in("key/testdata/key_vectors.json");
  EXPECT_TRUE(in.good()) << "key_vectors.json not found";
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(KeySchemaTest, MatchesIndependentVectors) {
  nlohmann::json doc = LoadVectors();
  ASSERT_EQ(doc.at("schema_version"), KeySchema::kVersion);
  ASSERT_GE(doc.at("vectors").size(), 5u);
  for (const auto& v : doc.at("vectors")) {
    SCOPED_TRACE(v.at("name").get<std::string>());
    KeySchema schema = SchemaFromJson(v.at("schema"));
    ASSERT_TRUE(schema.Validate().ok());
    EXPECT_EQ(absl::BytesToHexString(schema.Serialize()), v.at("serialized_hex"));
    EXPECT_EQ(schema.SchemaKey().ToHex(), v.at("schema_key"));
    EXPECT_EQ(schema.NamespaceName(), v.at("namespace"));
    std::vector<uint32_t> tokens = v.at("tokens");
    absl::StatusOr<std::vector<BlockKey>> keys = ChainKeys(schema, tokens);
    ASSERT_TRUE(keys.ok()) << keys.status();
    std::vector<std::string> want = v.at("keys");
    ASSERT_EQ(keys->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ((*keys)[i].ToHex(), want[i]) << "block " << i;
  }
}

TEST(KeySchemaTest, EveryFieldChangesTheNamespace) {
  KeySchema base;
  base.model_id = "m";
  std::vector<KeySchema> variants(12, base);
  variants[0].model_id = "m2";
  variants[1].weights_revision = "r";
  variants[2].tokenizer = "t";
  variants[3].kv_dtype = "fp8";
  variants[4].layout = "hnd";
  variants[5].tokens_per_block = 32;
  variants[6].tp_size = 2;
  variants[7].pp_size = 2;
  variants[8].geometry_independent = true;
  variants[9].lora_id = "a";
  variants[10].extra_keys = {"x"};
  variants[11].extra_keys = {"", ""};
  std::set<std::string> seen = {base.NamespaceName()};
  for (const KeySchema& v : variants) {
    EXPECT_TRUE(seen.insert(v.NamespaceName()).second) << v.Serialize();
  }
}

TEST(KeySchemaTest, FieldBoundariesAreUnambiguous) {
  KeySchema a, b;
  a.model_id = b.model_id = "m";
  a.lora_id = "ab";
  b.lora_id = "a";
  b.lora_version = "b";
  EXPECT_NE(a.SchemaKey(), b.SchemaKey());
}

TEST(KeySchemaTest, RejectsBadSchemas) {
  KeySchema s;
  EXPECT_EQ(s.Validate().code(), absl::StatusCode::kInvalidArgument);
  s.model_id = "m";
  s.tokens_per_block = 0;
  EXPECT_EQ(s.Validate().code(), absl::StatusCode::kInvalidArgument);
  s.tokens_per_block = 16;
  s.tp_rank = 1;
  EXPECT_EQ(s.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChainKeys(s, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KeySchemaTest, SharedPrefixSharesKeys) {
  KeySchema s;
  s.model_id = "m";
  s.tokens_per_block = 2;
  auto a = ChainKeys(s, {1, 2, 3, 4, 5, 6});
  auto b = ChainKeys(s, {1, 2, 3, 4, 9, 9});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0], (*b)[0]);
  EXPECT_EQ((*a)[1], (*b)[1]);
  EXPECT_NE((*a)[2], (*b)[2]);
}

TEST(BlockKeyTest, ChecksLengthAndHex) {
  EXPECT_EQ(BlockKey::FromBytes("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockKey::FromBytes(std::string(33, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(BlockKey::FromBytes(std::string(32, 'x')).ok());
  EXPECT_EQ(BlockKey::FromHex("abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockKey::FromHex("zz").status().code(), absl::StatusCode::kInvalidArgument);
  auto k = BlockKey::FromHex("00ff10");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->ToBytes(), std::string("\x00\xff\x10", 3));
  EXPECT_EQ(k->ToHex(), "00ff10");
}

}  // namespace
}  // namespace kvcache
