// Human byte sizes for flags and tables: "256KiB", "1.5GiB", "64MB", "4096".
//
// Thread safety: stateless functions.
#ifndef KVCACHE_COMMON_BYTE_SIZE_H_
#define KVCACHE_COMMON_BYTE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvcache {

// Accepts a number with an optional unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB,
// T/TB/TiB (case-insensitive; K, M, G, T and *iB are powers of 1024, *B of
// 1000). INVALID_ARGUMENT on anything else or on overflow.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// "0 B", "512 B", "1.5 KiB", "2.0 GiB".
std::string FormatBytes(uint64_t bytes);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_BYTE_SIZE_H_
