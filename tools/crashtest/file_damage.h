// What the crash test does to a stopped daemon's NVMe directory: flips bits
// in block records of the data file and in the RocksDB index's files, as a
// failing drive or a torn write would leave them.
//
// Thread safety: plain functions; the daemon must not be running.
#ifndef KVCACHE_TOOLS_CRASHTEST_FILE_DAMAGE_H_
#define KVCACHE_TOOLS_CRASHTEST_FILE_DAMAGE_H_

#include <cstdint>
#include <random>
#include <string>

#include "absl/status/statusor.h"

namespace kvcache {

// Flips `bits` bits, each in a record of `data_file` chosen at random (its
// header sector or the `payload_bytes` after it); records are found by
// their magic at 4 KiB boundaries. Returns the bits flipped: fewer when the
// file holds no record yet.
absl::StatusOr<int> FlipBitsInRecords(const std::string& data_file, uint64_t payload_bytes,
                                      int bits, std::mt19937_64& rng);

// Flips `bits` bits, each at a random place of a random file of the RocksDB
// directory `index_dir` (its tables, write-ahead log, MANIFEST, CURRENT,
// OPTIONS; not its LOCK or text logs). Returns the name of the last file
// hit, or "" if there was none.
absl::StatusOr<std::string> FlipBitsInIndex(const std::string& index_dir, int bits,
                                            std::mt19937_64& rng);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_CRASHTEST_FILE_DAMAGE_H_
