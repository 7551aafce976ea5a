#include "client/owed_releases.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"

namespace kvcache {
namespace {

// The lease ids in `framed`, which must be whole kRelease messages.
std::vector<uint64_t> LeaseIds(const std::string& framed) {
  std::vector<uint64_t> ids;
  size_t at = 0;
  while (at < framed.size()) {
    uint32_t head[2];
    EXPECT_GE(framed.size() - at, sizeof(head));
    if (framed.size() - at < sizeof(head)) break;
    std::memcpy(head, framed.data() + at, sizeof(head));
    at += sizeof(head);
    EXPECT_EQ(LocalTypeOf(head[0]), LocalMessage::kRelease);
    EXPECT_LT(LocalWaitingCpuOf(head[0]), 0) << "a release waits on no CPU";
    v1::LocalRelease release;
    EXPECT_TRUE(release.ParseFromArray(framed.data() + at, static_cast<int>(head[1])));
    at += head[1];
    ids.push_back(release.lease_id());
  }
  return ids;
}

// What the object's thread (or destructor) sent.
class Sent {
 public:
  OwedReleases::Send Sender() {
    return [this](const std::string& framed) {
      MutexLock lock(&mu_);
      sends_.push_back(framed);
    };
  }
  std::vector<std::string> sends() {
    MutexLock lock(&mu_);
    return sends_;
  }
  // Waits up to 10 s for a first send.
  bool AwaitSend() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (sends().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    return !sends().empty();
  }

 private:
  Mutex mu_;
  std::vector<std::string> sends_ ABSL_GUARDED_BY(mu_);
};

TEST(OwedReleasesTest, TakeGivesTheOwedReleasesInOrderOnce) {
  Sent sent;
  OwedReleases owed(absl::Hours(1), sent.Sender());
  EXPECT_EQ(owed.Take(), "");
  owed.Add(7);
  owed.Add(3);
  owed.Add(1ull << 40);
  EXPECT_EQ(LeaseIds(owed.Take()), (std::vector<uint64_t>{7, 3, 1ull << 40}));
  EXPECT_EQ(owed.Take(), "") << "taken once";
  EXPECT_TRUE(sent.sends().empty());
}

TEST(OwedReleasesTest, ReleasesARequestCarriedAreNotSentAgain) {
  Sent sent;
  OwedReleases owed(absl::Milliseconds(20), sent.Sender());
  for (uint64_t id = 1; id <= 5; ++id) {
    owed.Add(id);
    EXPECT_EQ(LeaseIds(owed.Take()), std::vector<uint64_t>{id});  // the next request's
  }
  absl::SleepFor(absl::Milliseconds(100));  // five delays: the thread woke and found none
  EXPECT_TRUE(sent.sends().empty());
}

TEST(OwedReleasesTest, ReleasesNoRequestCarriedAreSentAfterTheDelay) {
  Sent sent;
  OwedReleases owed(absl::Milliseconds(30), sent.Sender());
  const absl::Time added = absl::Now();
  owed.Add(11);
  owed.Add(12);
  ASSERT_TRUE(sent.AwaitSend());
  EXPECT_GE(absl::Now() - added, absl::Milliseconds(30));
  EXPECT_EQ(LeaseIds(sent.sends()[0]), (std::vector<uint64_t>{11, 12}));
  // Owed again after a quiet spell: the idle thread wakes for it.
  absl::SleepFor(absl::Milliseconds(50));
  owed.Add(13);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sent.sends().size() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(sent.sends().size(), 2u);
  EXPECT_EQ(LeaseIds(sent.sends()[1]), std::vector<uint64_t>{13});
}

TEST(OwedReleasesTest, DestructionSendsWhatIsStillOwed) {
  Sent sent;
  {
    OwedReleases owed(absl::Hours(1), sent.Sender());
    owed.Add(21);
    owed.Add(22);
  }
  ASSERT_EQ(sent.sends().size(), 1u);
  EXPECT_EQ(LeaseIds(sent.sends()[0]), (std::vector<uint64_t>{21, 22}));
}

TEST(OwedReleasesTest, AddsFromManyThreadsAreEachTakenOrSentOnce) {
  Sent sent;
  std::vector<uint64_t> taken;
  {
    OwedReleases owed(absl::Milliseconds(1), sent.Sender());
    std::vector<std::thread> adders;
    for (int t = 0; t < 4; ++t) {
      adders.emplace_back([&owed, t] {
        for (uint64_t i = 0; i < 500; ++i) owed.Add(t * 1000 + i);
      });
    }
    for (int i = 0; i < 200; ++i) {
      for (uint64_t id : LeaseIds(owed.Take())) taken.push_back(id);
    }
    for (std::thread& a : adders) a.join();
  }
  for (const std::string& bytes : sent.sends()) {
    for (uint64_t id : LeaseIds(bytes)) taken.push_back(id);
  }
  std::sort(taken.begin(), taken.end());
  std::vector<uint64_t> want;
  for (uint64_t t = 0; t < 4; ++t) {
    for (uint64_t i = 0; i < 500; ++i) want.push_back(t * 1000 + i);
  }
  EXPECT_EQ(taken, want);
}

}  // namespace
}  // namespace kvcache
