#include "client/direct_read_reporter.h"

#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

BlockKey Key(int i) { return *BlockKey::FromBytes("k" + std::to_string(i)); }

struct Sink {
  Mutex mu;
  std::vector<v1::DirectReadReport> reports ABSL_GUARDED_BY(mu);
  void Add(const v1::DirectReadReport& r) {
    MutexLock lock(&mu);
    reports.push_back(r);
  }
  size_t Count() {
    MutexLock lock(&mu);
    return reports.size();
  }
};

TEST(DirectReadReporterTest, CoalescesReadsAndSendsAfterTheDelay) {
  Sink sink;
  DirectReadReporter reporter([&](const v1::DirectReadReport& r) { sink.Add(r); },
                              absl::Milliseconds(30), 1000);
  reporter.Record(1, Key(1), 100);
  reporter.Record(1, Key(1), 100);
  reporter.Record(2, Key(1), 50);  // same key, other namespace: its own entry
  reporter.RecordFetch();
  EXPECT_EQ(sink.Count(), 0u);  // not before the delay
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink.Count() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  MutexLock lock(&sink.mu);
  ASSERT_EQ(sink.reports.size(), 1u);
  const v1::DirectReadReport& r = sink.reports[0];
  EXPECT_EQ(r.fetches(), 1u);
  EXPECT_EQ(r.bytes(), 250u);
  ASSERT_EQ(r.reads_size(), 2);
  for (const v1::DirectRead& read : r.reads()) {
    EXPECT_EQ(read.key(), "k1");
    EXPECT_EQ(read.count(), read.namespace_id() == 1 ? 2u : 1u);
  }
}

TEST(DirectReadReporterTest, SendsAtOnceWhenFullAndTheRestOnDestruction) {
  Sink sink;
  {
    DirectReadReporter reporter([&](const v1::DirectReadReport& r) { sink.Add(r); }, absl::Hours(1),
                                3);
    for (int i = 0; i < 4; ++i) reporter.Record(0, Key(i), 10);
    EXPECT_EQ(sink.Count(), 1u);  // three distinct blocks filled a batch
  }
  MutexLock lock(&sink.mu);
  ASSERT_EQ(sink.reports.size(), 2u);
  EXPECT_EQ(sink.reports[0].reads_size(), 3);
  EXPECT_EQ(sink.reports[1].reads_size(), 1);
  EXPECT_EQ(sink.reports[1].reads(0).key(), "k3");
}

TEST(DirectReadReporterTest, NothingRecordedSendsNothing) {
  Sink sink;
  {
    DirectReadReporter reporter([&](const v1::DirectReadReport& r) { sink.Add(r); },
                                absl::Milliseconds(1), 10);
  }
  EXPECT_EQ(sink.Count(), 0u);
}

}  // namespace
}  // namespace kvcache
