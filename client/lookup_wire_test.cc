#include "client/lookup_wire.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {
namespace {

std::vector<BlockKey> Keys(std::vector<std::string> bytes) {
  std::vector<BlockKey> keys;
  for (const std::string& b : bytes) keys.push_back(*BlockKey::FromBytes(b));
  return keys;
}

// The written bytes parse back into the request the message API would make.
void ExpectSameAsMessage(const std::string& ns, const std::vector<BlockKey>& keys, bool packed) {
  v1::LookupRequest want;
  want.set_namespace_(ns);
  if (packed) {
    for (const BlockKey& k : keys) want.mutable_packed_keys()->append(k.ToBytes());
    want.set_packed_key_size(static_cast<uint32_t>(keys.front().size()));
  } else {
    for (const BlockKey& k : keys) want.add_keys(k.ToBytes());
  }
  std::string wire = "prefix";  // appended to, never overwritten
  AppendLookupRequest(ns, keys, packed, &wire);
  ASSERT_EQ(wire.substr(0, 6), "prefix");
  v1::LookupRequest got;
  ASSERT_TRUE(got.ParseFromString(wire.substr(6)));
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
  EXPECT_EQ(wire.substr(6), want.SerializeAsString());  // proto3's canonical bytes, too
}

TEST(LookupWireTest, PackedKeysMatchTheMessage) {
  ExpectSameAsMessage("model/ns", Keys({std::string(32, 'a'), std::string(32, 'b')}), true);
  std::vector<BlockKey> many;  // lengths past one varint byte
  for (int i = 0; i < 1024; ++i) many.push_back(*BlockKey::FromBytes(std::string(32, char(i))));
  ExpectSameAsMessage(std::string(300, 'n'), many, true);
  ExpectSameAsMessage("n", Keys({"k"}), true);
}

TEST(LookupWireTest, KeysOneFieldEachMatchTheMessage) {
  ExpectSameAsMessage("ns", Keys({"short", std::string(32, 'x'), "k"}), false);
  ExpectSameAsMessage("", Keys({"a"}), false);  // an empty namespace is left out
}

TEST(LookupWireTest, PackableOnlyWhenAllKeysHaveOneSize) {
  EXPECT_TRUE(PackableKeys(Keys({"ab", "cd"})));
  EXPECT_FALSE(PackableKeys(Keys({"ab", "c"})));
  EXPECT_FALSE(PackableKeys({}));
}

}  // namespace
}  // namespace kvcache
