#include "tools/crashtest/file_damage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

constexpr uint64_t kSector = 4096;
constexpr uint8_t kRecordMagic[4] = {'K', 'V', 'N', 'R'};  // 0x524E564B, little-endian

absl::Status FlipBit(int fd, uint64_t at, int bit, const std::string& path) {
  uint8_t b = 0;
  if (pread(fd, &b, 1, static_cast<off_t>(at)) != 1) {
    return absl::UnavailableError(absl::StrCat("read ", path, ": ", std::strerror(errno)));
  }
  b ^= static_cast<uint8_t>(1u << bit);
  if (pwrite(fd, &b, 1, static_cast<off_t>(at)) != 1) {
    return absl::UnavailableError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> FlipBitsInRecords(const std::string& data_file, uint64_t payload_bytes,
                                      int bits, std::mt19937_64& rng) {
  const int fd = open(data_file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("open ", data_file, ": ", std::strerror(errno)));
  }
  const off_t size = lseek(fd, 0, SEEK_END);
  std::vector<uint64_t> records;
  std::vector<uint8_t> chunk(1 << 20);
  for (off_t at = 0; at < size; at += static_cast<off_t>(chunk.size())) {
    const ssize_t n = pread(fd, chunk.data(), chunk.size(), at);
    if (n <= 0) break;
    for (ssize_t s = 0; s + 4 <= n; s += kSector) {
      if (std::memcmp(&chunk[s], kRecordMagic, 4) == 0) records.push_back(at + s);
    }
  }
  int flipped = 0;
  absl::Status status = absl::OkStatus();
  for (; flipped < bits && !records.empty() && status.ok(); ++flipped) {
    const uint64_t record = records[rng() % records.size()];
    const uint64_t at = std::min<uint64_t>(record + rng() % (kSector + payload_bytes), size - 1);
    status = FlipBit(fd, at, static_cast<int>(rng() % 8), data_file);
  }
  fsync(fd);
  close(fd);
  if (!status.ok()) return status;
  return flipped;
}

absl::StatusOr<std::string> FlipBitsInIndex(const std::string& index_dir, int bits,
                                            std::mt19937_64& rng) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(index_dir, ec)) {
    const std::string name = entry.path().filename();
    if (!entry.is_regular_file() || entry.file_size() == 0 || name == "LOCK" ||
        absl::StartsWith(name, "LOG")) {
      continue;
    }
    files.push_back(entry.path());
  }
  if (ec) return absl::UnavailableError(absl::StrCat("list ", index_dir, ": ", ec.message()));
  std::string hit;
  for (int i = 0; i < bits && !files.empty(); ++i) {
    const std::filesystem::path& path = files[rng() % files.size()];
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat("open ", path.string(), ": ", std::strerror(errno)));
    }
    const off_t size = lseek(fd, 0, SEEK_END);
    absl::Status s = FlipBit(fd, rng() % static_cast<uint64_t>(size), static_cast<int>(rng() % 8),
                             path.string());
    fsync(fd);
    close(fd);
    if (!s.ok()) return s;
    hit = path.filename();
  }
  return hit;
}

}  // namespace kvcache
