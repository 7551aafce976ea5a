#include "membership/rendezvous.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

std::vector<BlockKey> Keys(int n) {
  std::vector<BlockKey> keys;
  for (int i = 0; i < n; ++i) keys.push_back(*BlockKey::FromBytes("key-" + std::to_string(i)));
  return keys;
}

std::vector<std::string> Nodes(int n) {
  std::vector<std::string> nodes;
  for (int i = 0; i < n; ++i) nodes.push_back("10.0.0." + std::to_string(i) + ":50051");
  return nodes;
}

TEST(RendezvousTest, SpreadsKeysEvenlyAndAgreesAcrossOrderings) {
  const std::vector<BlockKey> keys = Keys(20000);
  Rendezvous four(Nodes(4));
  std::vector<std::string> reversed = Nodes(4);
  std::reverse(reversed.begin(), reversed.end());
  Rendezvous four_reversed(reversed);
  std::vector<int> count(4, 0);
  for (const BlockKey& k : keys) {
    const size_t owner = four.Owner(k);
    ++count[owner];
    EXPECT_EQ(four.node(owner), four_reversed.node(four_reversed.Owner(k)));
  }
  for (int c : count) EXPECT_NEAR(c, 5000, 300);  // 6 standard deviations is ~370
}

TEST(RendezvousTest, AJoiningNodeTakesAboutOneInNAndNothingElseMoves) {
  const std::vector<BlockKey> keys = Keys(20000);
  Rendezvous four(Nodes(4)), five(Nodes(5));
  int moved = 0;
  for (const BlockKey& k : keys) {
    const std::string before = four.node(four.Owner(k));
    const std::string after = five.node(five.Owner(k));
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, Nodes(5)[4]);  // only to the new node
    }
  }
  EXPECT_NEAR(moved / 20000.0, 1.0 / 5, 0.02);
}

TEST(RendezvousTest, ADownNodesKeysGoToTheirNextChoiceOnly) {
  const std::vector<BlockKey> keys = Keys(20000);
  Rendezvous four(Nodes(4));
  const std::vector<bool> node2_down = {true, true, false, true};
  int moved = 0;
  for (const BlockKey& k : keys) {
    const size_t owner = four.Owner(k);
    const size_t failover = four.Owner(k, node2_down);
    EXPECT_NE(failover, 2u);
    if (owner != failover) {
      ++moved;
      EXPECT_EQ(owner, 2u);  // only node 2's keys move
    }
  }
  EXPECT_NEAR(moved / 20000.0, 1.0 / 4, 0.02);
  EXPECT_EQ(four.Owner(keys[0], {false, false, false, false}), SIZE_MAX);
  const std::vector<size_t> ranked = four.Ranked(keys[0], 3);
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked[0], four.Owner(keys[0]));  // best first, all distinct
  EXPECT_NE(ranked[1], ranked[0]);
  EXPECT_NE(ranked[2], ranked[1]);
  EXPECT_EQ(four.Ranked(keys[0], 9).size(), 4u);
  EXPECT_EQ(four.Ranked(keys[0], 9, node2_down).size(), 3u);
  EXPECT_EQ(Rendezvous({}).Owner(keys[0]), SIZE_MAX);
}

}  // namespace
}  // namespace kvcache
