#include "kvstore/store/connection_share.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(ConnectionShareTest, ChargesUpToTheLimitAndNoFurther) {
  ConnectionShare share(100);
  EXPECT_TRUE(share.Charge(60, "staged").ok());
  EXPECT_TRUE(share.Charge(40, "pinned").ok());
  const absl::Status over = share.Charge(1, "pinned");
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(share.held(), 100u);
  share.Release(60);
  EXPECT_EQ(share.Charge(61, "staged").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(share.Charge(60, "staged").ok());
  EXPECT_EQ(share.Charge(~uint64_t{0}, "staged").code(), absl::StatusCode::kResourceExhausted);
}

TEST(ConnectionShareTest, ShareChargeGivesBackOnceWhenDestroyedOrMoved) {
  auto share = std::make_shared<ConnectionShare>(100);
  ASSERT_TRUE(share->Charge(30, "pinned").ok());
  ShareCharge charge(share, 30);
  ShareCharge moved = std::move(charge);
  charge.Reset();  // moved from: gives back nothing
  EXPECT_EQ(share->held(), 30u);
  moved = ShareCharge();
  EXPECT_EQ(share->held(), 0u);
}

TEST(ConnectionShareTest, StreamsOfOneConnectionShareOneShare) {
  ConnectionShares shares(100);
  auto a = shares.For("ipv4:127.0.0.1:5000", "t");
  auto b = shares.For("ipv4:127.0.0.1:5000", "t");
  auto other = shares.For("ipv4:127.0.0.1:5001", "t");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  a.reset();
  b.reset();
  // Once no stream holds it, a connection's share is made anew (empty).
  for (int i = 0; i < 200; ++i) shares.For("ipv4:127.0.0.1:" + std::to_string(6000 + i), "t");
  EXPECT_EQ(shares.For("ipv4:127.0.0.1:5000", "t")->held(), 0u);
  EXPECT_NE(shares.ForOne("t"), shares.ForOne("t"));
  // Another tenant's calls on the same connection have a share of their own.
  EXPECT_NE(shares.For("ipv4:127.0.0.1:5000", "t"), shares.For("ipv4:127.0.0.1:5000", "u"));
}

TEST(ConnectionShareTest, ATenantsConnectionsTogetherStayWithinItsShare) {
  ConnectionShares shares(/*limit_bytes=*/100, /*tenant_limit_bytes=*/150);
  auto a1 = shares.ForOne("a");
  auto a2 = shares.For("ipv4:127.0.0.1:5000", "a");
  auto b = shares.ForOne("b");
  ASSERT_TRUE(a1->Charge(100, "pinned").ok());
  const absl::Status over = a2->Charge(60, "staged");  // fits a2, not tenant a
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("--tenant_share"), std::string::npos) << over;
  EXPECT_EQ(a2->held(), 0u);  // nothing was kept of the refused charge
  EXPECT_TRUE(a2->Charge(50, "staged").ok());
  EXPECT_TRUE(b->Charge(100, "pinned").ok());  // another tenant is not held back
  a1->Release(100);
  EXPECT_TRUE(a2->Charge(50, "staged").ok());
  EXPECT_EQ(a2->Charge(1, "staged").code(), absl::StatusCode::kResourceExhausted);
  const absl::Status own = a2->Charge(1, "staged");
  EXPECT_NE(own.message().find("--connection_share"), std::string::npos) << own;
}

TEST(ConnectionShareTest, ConcurrentChargesNeverPassTheLimit) {
  ConnectionShare share(1000);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (share.Charge(7, "staged").ok()) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000 / 7);
  EXPECT_EQ(share.held(), uint64_t{1000 / 7 * 7});
}

}  // namespace
}  // namespace kvcache
