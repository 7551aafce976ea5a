#include "kvstore/index/recency_list.h"

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

struct Item {
  uint64_t tick = 0;
  RecencyLinks<Item> a;
  RecencyLinks<Item> b;
};

std::vector<uint64_t> Ticks(const RecencyList<Item>& list) {
  std::vector<uint64_t> out;
  for (Item* i = list.coldest(); i != nullptr; i = list.Newer(i)) out.push_back(i->tick);
  return out;
}

// Walks both directions and checks they agree with size().
void ExpectConsistent(const RecencyList<Item>& list, RecencyLinks<Item> Item::*links) {
  std::vector<const Item*> forward;
  for (Item* i = list.coldest(); i != nullptr; i = list.Newer(i)) forward.push_back(i);
  std::vector<const Item*> backward;
  for (Item* i = list.newest(); i != nullptr; i = (i->*links).older) backward.push_back(i);
  ASSERT_EQ(forward.size(), list.size());
  ASSERT_EQ(backward.size(), list.size());
  for (size_t i = 0; i < forward.size(); ++i) {
    EXPECT_EQ(forward[i], backward[backward.size() - 1 - i]);
    EXPECT_TRUE((forward[i]->*links).linked);
  }
}

TEST(RecencyListTest, PushMoveAndRemoveKeepTheOrder) {
  std::deque<Item> items(4);
  RecencyList<Item> list(&Item::a);
  for (int i = 0; i < 4; ++i) {
    items[i].tick = i + 1;
    list.PushNewest(&items[i]);
  }
  EXPECT_EQ(Ticks(list), (std::vector<uint64_t>{1, 2, 3, 4}));
  items[1].tick = 5;
  list.MoveToNewest(&items[1]);
  EXPECT_EQ(Ticks(list), (std::vector<uint64_t>{1, 3, 4, 5}));
  list.MoveToNewest(&items[1]);  // already newest: nothing moves
  EXPECT_EQ(Ticks(list), (std::vector<uint64_t>{1, 3, 4, 5}));
  list.Remove(&items[0]);
  list.Remove(&items[1]);
  EXPECT_EQ(Ticks(list), (std::vector<uint64_t>{3, 4}));
  EXPECT_FALSE(list.Linked(items[0]));
  EXPECT_TRUE(list.Linked(items[2]));
  ExpectConsistent(list, &Item::a);
  list.Remove(&items[2]);
  list.Remove(&items[3]);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.coldest(), nullptr);
  EXPECT_EQ(list.newest(), nullptr);
}

TEST(RecencyListTest, PlaceSortsNearEitherEnd) {
  std::deque<Item> items;
  RecencyList<Item> list(&Item::a);
  for (uint64_t t : {10, 20, 30, 40}) {
    items.push_back(Item{t});
    list.PushNewest(&items.back());
  }
  for (uint64_t t : {5, 25, 45, 20, 35}) {
    items.push_back(Item{t});
    list.Place(&items.back());
  }
  EXPECT_EQ(Ticks(list), (std::vector<uint64_t>{5, 10, 20, 20, 25, 30, 35, 40, 45}));
  ExpectConsistent(list, &Item::a);
}

TEST(RecencyListTest, PlaceDeepInTheMiddleCountsAsColderNeverNewer) {
  const int n = 4 * RecencyList<Item>::kMaxPlaceSteps;
  std::deque<Item> items(n);
  RecencyList<Item> list(&Item::a);
  for (int i = 0; i < n; ++i) {
    items[i].tick = 2 * (i + 1);
    list.PushNewest(&items[i]);
  }
  Item middle{static_cast<uint64_t>(n) + 1};  // belongs n / 2 entries in
  list.Place(&middle);
  std::vector<uint64_t> ticks = Ticks(list);
  ASSERT_EQ(ticks.size(), static_cast<size_t>(n + 1));
  EXPECT_EQ(ticks[RecencyList<Item>::kMaxPlaceSteps], middle.tick);
  ExpectConsistent(list, &Item::a);
}

TEST(RecencyListTest, TwoListsThroughTwoMembersAreIndependent) {
  std::deque<Item> items(3);
  RecencyList<Item> first(&Item::a);
  RecencyList<Item> second(&Item::b);
  for (int i = 0; i < 3; ++i) {
    items[i].tick = i + 1;
    first.PushNewest(&items[i]);
    second.PushNewest(&items[2 - i]);  // the other way round; ticks unsorted there
  }
  first.Remove(&items[1]);
  EXPECT_EQ(Ticks(first), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(Ticks(second), (std::vector<uint64_t>{3, 2, 1}));
  EXPECT_FALSE(first.Linked(items[1]));
  EXPECT_TRUE(second.Linked(items[1]));
}

// Random pushes, moves, places and removals against a model that sorts by
// tick: with every place near an end, the list stays exactly sorted.
TEST(RecencyListTest, MatchesASortedModelUnderRandomChanges) {
  std::mt19937_64 rng(42);
  std::deque<Item> items(200);
  RecencyList<Item> list(&Item::a);
  uint64_t clock = 1000;
  for (int step = 0; step < 20000; ++step) {
    Item& it = items[rng() % items.size()];
    const int op = static_cast<int>(rng() % 4);
    if (list.Linked(it)) {
      if (op == 0) {
        list.Remove(&it);
      } else {
        it.tick = ++clock;
        list.MoveToNewest(&it);
      }
    } else if (op == 0 || list.empty()) {
      it.tick = ++clock;
      list.PushNewest(&it);
    } else {
      // An older tick near one end, as a block that becomes a leaf gets.
      const bool near_cold = rng() % 2 == 0;
      it.tick = near_cold ? list.coldest()->tick - (rng() % 2)
                          : list.newest()->tick - (rng() % 3);
      list.Place(&it);
    }
    if (step % 997 == 0) ExpectConsistent(list, &Item::a);
  }
  ExpectConsistent(list, &Item::a);
  std::vector<uint64_t> ticks = Ticks(list);
  for (size_t i = 1; i < ticks.size(); ++i) EXPECT_LE(ticks[i - 1], ticks[i]) << i;
}

}  // namespace
}  // namespace kvcache
