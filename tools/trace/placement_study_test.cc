#include "tools/trace/placement_study.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

BlockKey Key(int chain, int position) {
  return *BlockKey::FromBytes(absl::StrCat("chain-", chain, "-block-", position));
}

// `count` distinct chains of `length` blocks sharing one first block (a
// system prompt), each asked twice in a row: the second ask hits all of it.
std::vector<std::vector<BlockKey>> TwiceEach(int count, int length) {
  std::vector<std::vector<BlockKey>> chains;
  for (int c = 0; c < count; ++c) {
    std::vector<BlockKey> chain{*BlockKey::FromBytes("system-prompt")};
    for (int i = 1; i < length; ++i) chain.push_back(Key(c, i));
    chains.push_back(chain);
    chains.push_back(chain);
  }
  return chains;
}

TEST(PlacementStudyTest, TwoReplicasKeepEveryHitThroughOneDeath) {
  const auto chains = TwiceEach(200, 20);
  for (int segment : {1, 4, 8}) {
    EXPECT_DOUBLE_EQ(StudyPlacement(chains, 4, segment, 2).kept_one_down, 1.0) << segment;
  }
}

TEST(PlacementStudyTest, OneReplicaLosesTheRestOfAChainAtItsFirstBlockOnTheDeadNode) {
  const auto chains = TwiceEach(200, 20);
  const PlacementFigures per_block = StudyPlacement(chains, 4, 1, 1);
  const PlacementFigures segments = StudyPlacement(chains, 4, 8, 1);
  // 19 blocks placed one by one: a chain keeps on average about the sum
  // over i of (3/4)^i of them, a few; three segments keep far more.
  EXPECT_LT(per_block.kept_one_down, 0.35);
  EXPECT_GT(segments.kept_one_down, per_block.kept_one_down + 0.2);
}

TEST(PlacementStudyTest, SegmentsTouchFewerNodes) {
  const auto chains = TwiceEach(200, 20);
  const PlacementFigures per_block = StudyPlacement(chains, 4, 1, 2);
  // The root's replica plus one node per segment at most.
  const PlacementFigures whole = StudyPlacement(chains, 4, 64, 2);
  EXPECT_GT(per_block.nodes_per_request, 3.9);  // 19 blocks cover 4 nodes
  EXPECT_LE(whole.nodes_per_request, 2.0);
  EXPECT_GE(whole.nodes_per_request, 1.0);
}

TEST(PlacementStudyTest, EveryRepeatedBlockIsReadAsAHit) {
  const auto chains = TwiceEach(50, 10);
  const PlacementFigures f = StudyPlacement(chains, 4, 1, 1);
  // Reads split over 4 nodes: the busiest has at least a quarter of them.
  EXPECT_GE(f.hottest_read_share, 0.25);
  EXPECT_LT(f.hottest_read_share, 0.5);
  // Copies split about evenly (the root is on every node).
  EXPECT_GE(f.largest_over_mean_copies, 1.0);
  EXPECT_LT(f.largest_over_mean_copies, 1.3);
}

TEST(PlacementStudyTest, NoChainsNoFigures) {
  const PlacementFigures f = StudyPlacement({}, 4, 1, 2);
  EXPECT_EQ(f.nodes_per_request, 0);
  EXPECT_EQ(f.kept_one_down, 1);
}

}  // namespace
}  // namespace kvcache
