// A production request trace (../shared/traces/README.md): one JSON object a
// line with the request's arrival time and its prompt's chain of block-hash
// ids. An id stands for a block and everything before it.
#ifndef KVCACHE_TOOLS_TRACE_TRACE_H_
#define KVCACHE_TOOLS_TRACE_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kvcache {

struct TraceRequest {
  int64_t timestamp_ms = 0;  // arrival, from the start of the trace
  int64_t input_length = 0;  // prompt tokens
  int64_t output_length = 0;
  std::vector<uint64_t> hash_ids;  // the prompt's blocks, in order
};

// Parses one line. INVALID_ARGUMENT (naming what is wrong) unless it is an
// object with a numeric "timestamp" and an array of integer "hash_ids";
// lengths default to 0 and unknown keys are ignored.
absl::StatusOr<TraceRequest> ParseTraceLine(const std::string& line);

// Reads a whole .jsonl trace, skipping blank lines. NOT_FOUND if the file
// cannot be opened; INVALID_ARGUMENT with the line number for a bad line.
absl::StatusOr<std::vector<TraceRequest>> LoadTrace(const std::string& path);

// Distinct block ids over the whole trace.
uint64_t DistinctBlocks(const std::vector<TraceRequest>& trace);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_TRACE_TRACE_H_
