#include "kvstore/index/drop_record.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

BlockKey Key(const std::string& s) { return *BlockKey::FromBytes(s); }

TEST(DropRecordTest, FindsTheNewestDropOfAKeyInItsNamespace) {
  DropRecord drops(8);
  drops.Add(1, Key("a"), MissReason::kEvictedPressure, 100);
  drops.Add(1, Key("a"), MissReason::kEvictedOperator, 200);
  drops.Add(2, Key("b"), MissReason::kIntegrity, 300);
  ASSERT_TRUE(drops.Find(1, Key("a")).has_value());
  EXPECT_EQ(drops.Find(1, Key("a"))->reason, MissReason::kEvictedOperator);
  EXPECT_EQ(drops.Find(1, Key("a"))->unix_micros, 200);
  EXPECT_EQ(drops.Find(2, Key("b"))->reason, MissReason::kIntegrity);
  EXPECT_FALSE(drops.Find(2, Key("a")).has_value());  // the namespace is part of the key
  EXPECT_FALSE(drops.Find(1, Key("b")).has_value());
  EXPECT_EQ(drops.size(), 2u);
}

TEST(DropRecordTest, ForgetsTheOldestOnceFullAndNeverGrowsPastItsCapacity) {
  DropRecord drops(4);
  for (int i = 0; i < 10; ++i) {
    drops.Add(0, Key("k" + std::to_string(i)), MissReason::kEvictedPressure, i);
  }
  EXPECT_EQ(drops.size(), 4u);
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(drops.Find(0, Key("k" + std::to_string(i)))) << i;
  for (int i = 6; i < 10; ++i) EXPECT_EQ(drops.Find(0, Key("k" + std::to_string(i)))->unix_micros, i);
}

TEST(DropRecordTest, AKeyDroppedAgainMovesToTheNewestEnd) {
  DropRecord drops(3);
  drops.Add(0, Key("a"), MissReason::kEvictedPressure, 1);
  drops.Add(0, Key("b"), MissReason::kEvictedPressure, 2);
  drops.Add(0, Key("a"), MissReason::kIntegrity, 3);  // a is now newer than b
  drops.Add(0, Key("c"), MissReason::kEvictedPressure, 4);
  drops.Add(0, Key("d"), MissReason::kEvictedPressure, 5);  // overwrites a's old slot, then b
  EXPECT_FALSE(drops.Find(0, Key("b")).has_value());
  ASSERT_TRUE(drops.Find(0, Key("a")).has_value());
  EXPECT_EQ(drops.Find(0, Key("a"))->reason, MissReason::kIntegrity);
  EXPECT_TRUE(drops.Find(0, Key("c")).has_value());
  EXPECT_TRUE(drops.Find(0, Key("d")).has_value());
  EXPECT_EQ(drops.size(), 3u);
}

TEST(DropRecordTest, CapacityZeroRecordsNothing) {
  DropRecord drops(0);
  drops.Add(0, Key("a"), MissReason::kEvictedPressure, 1);
  EXPECT_FALSE(drops.Find(0, Key("a")).has_value());
  EXPECT_EQ(drops.size(), 0u);
}

TEST(DropRecordTest, ManyThreadsAddAndFindAtOnce) {
  DropRecord drops(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&drops, t] {
      for (int i = 0; i < 2000; ++i) {
        const BlockKey key = Key("t" + std::to_string(t) + "-" + std::to_string(i % 100));
        drops.Add(t, key, MissReason::kEvictedPressure, i);
        (void)drops.Find(t, key);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(drops.size(), 64u);
  EXPECT_GT(drops.size(), 0u);
}

}  // namespace
}  // namespace kvcache
