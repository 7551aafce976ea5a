#include "tools/trace/trace.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(TraceTest, ParsesALineInAnyKeyOrder) {
  auto r = ParseTraceLine(
      R"({"hash_ids": [0, 14, 15], "output_length": 490, "timestamp": 3536999, )"
      R"("input_length": 7322, "extra": [1, "x"], "note": "hi"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp_ms, 3536999);
  EXPECT_EQ(r->input_length, 7322);
  EXPECT_EQ(r->output_length, 490);
  EXPECT_EQ(r->hash_ids, (std::vector<uint64_t>{0, 14, 15}));
  auto empty = ParseTraceLine(R"({"timestamp": 5, "hash_ids": []})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->hash_ids.empty());
}

TEST(TraceTest, RejectsBadLinesWithAReason) {
  for (const char* bad : {
           R"([1, 2])",
           R"({"hash_ids": [1]})",
           R"({"timestamp": 1})",
           R"({"timestamp": -1, "hash_ids": [1]})",
           R"({"timestamp": 1, "hash_ids": [1.5]})",
           R"({"timestamp": 1, "hash_ids": [1, 2)",
           R"({"timestamp": 1, "hash_ids": [1]} trailing)",
           R"({"timestamp": "soon", "hash_ids": [1]})",
       }) {
    auto r = ParseTraceLine(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(r.status().message().empty()) << bad;
  }
}

TEST(TraceTest, LoadsAFileAndNamesTheBadLine) {
  const std::string path = ::testing::TempDir() + "/trace_test.jsonl";
  {
    std::ofstream out(path);
    out << R"({"timestamp": 0, "hash_ids": [0, 1, 2]})" << "\n\n"
        << R"({"timestamp": 10, "hash_ids": [0, 3]})" << "\n";
  }
  auto trace = LoadTrace(path);
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->size(), 2u);
  EXPECT_EQ(DistinctBlocks(*trace), 4u);
  {
    std::ofstream out(path, std::ios::app);
    out << "{oops\n";
  }
  auto bad = LoadTrace(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(":4:"), std::string::npos) << bad.status();
  EXPECT_EQ(LoadTrace(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace kvcache
