#include "kvstore/store/staging_space.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(StagingSpaceTest, ReservesLowestFreeRangesAndMergesThemBack) {
  auto space = StagingSpace::Create(10 * 4096);
  ASSERT_TRUE(space.ok()) << space.status();
  auto a = (*space)->Reserve(4096);
  auto b = (*space)->Reserve(5000);  // two pages
  auto c = (*space)->Reserve(1);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->offset(), 0u);
  EXPECT_EQ(b->offset(), 4096u);
  EXPECT_EQ(c->offset(), 3 * 4096u);
  EXPECT_EQ(b->length(), 5000u);
  EXPECT_EQ((*space)->reserved_bytes(), 4 * 4096u);

  *b = StagingSpace::Range();  // gives its two pages back
  auto d = (*space)->Reserve(4096);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->offset(), 4096u);  // the lowest hole first

  // Too big for any hole until its neighbours come back and merge.
  EXPECT_EQ((*space)->Reserve(9 * 4096).status().code(), absl::StatusCode::kResourceExhausted);
  *a = StagingSpace::Range();
  *c = StagingSpace::Range();
  *d = StagingSpace::Range();
  EXPECT_EQ((*space)->reserved_bytes(), 0u);
  auto all = (*space)->Reserve(10 * 4096);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->offset(), 0u);
}

TEST(StagingSpaceTest, RejectsSizesItCanNeverHold) {
  EXPECT_EQ(StagingSpace::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
  auto space = StagingSpace::Create(4096);
  ASSERT_TRUE(space.ok());
  EXPECT_EQ((*space)->Reserve(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*space)->Reserve(4097).status().code(), absl::StatusCode::kInvalidArgument);
}

// The client's view: it maps the fd writable and the daemon sees its bytes;
// it cannot shrink the memfd under the daemon.
TEST(StagingSpaceTest, ClientWritesAreVisibleAndItCannotResize) {
  auto space = StagingSpace::Create(2 * 4096);
  ASSERT_TRUE(space.ok());
  auto range = (*space)->Reserve(100);
  ASSERT_TRUE(range.ok());
  void* client = mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (*space)->fd(), 0);
  ASSERT_NE(client, MAP_FAILED);
  std::memset(static_cast<uint8_t*>(client) + range->offset(), 'z', 100);
  const std::vector<uint8_t> seen(range->bytes().begin(), range->bytes().end());
  EXPECT_EQ(seen, std::vector<uint8_t>(100, 'z'));
  EXPECT_NE(ftruncate((*space)->fd(), 0), 0);
  munmap(client, 2 * 4096);
}

}  // namespace
}  // namespace kvcache
