#include "common/log.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(LogTest, ASinkTakesEveryLineWithItsLevelAndGivesStderrBack) {
  std::vector<std::pair<LogLevel, std::string>> lines;
  const LogSink before = SetLogSink(
      [&](LogLevel level, absl::string_view m) { lines.emplace_back(level, std::string(m)); });
  EXPECT_FALSE(before);  // stderr until now
  Log(LogLevel::kWarning, "NVMe tier: writes disabled");
  Log(LogLevel::kInfo, "registered in etcd");
  const LogSink ours = SetLogSink(nullptr);
  EXPECT_TRUE(ours);
  Log(LogLevel::kError, "this one goes to stderr");  // not to the sink
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].first, LogLevel::kWarning);
  EXPECT_EQ(lines[0].second, "NVMe tier: writes disabled");
  EXPECT_EQ(lines[1].first, LogLevel::kInfo);
}

TEST(LogTest, StderrLinesStartWithTheProgramNameAndDoNotInterleave) {
  SetLogProgramName("log_test");
  testing::internal::CaptureStderr();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) Log(LogLevel::kInfo, std::string(50, static_cast<char>('a' + t)));
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string out = testing::internal::GetCapturedStderr();
  SetLogProgramName("kvstored");
  size_t lines = 0;
  for (size_t start = 0; start < out.size();) {
    const size_t end = out.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    const std::string line = out.substr(start, end - start);
    ASSERT_EQ(line.size(), std::string("log_test: ").size() + 50) << line;
    EXPECT_EQ(line.rfind("log_test: ", 0), 0u) << line;
    EXPECT_EQ(line.find_first_not_of(line.back(), 10), std::string::npos) << line;
    ++lines;
    start = end + 1;
  }
  EXPECT_EQ(lines, 400u);
}

}  // namespace
}  // namespace kvcache
