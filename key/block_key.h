// A block key: 1..32 opaque bytes, stored inline so index entries and lookup
// batches allocate nothing per key. The client library's keys are SHA-256
// chain hashes (32 bytes); engines may pass their own shorter hashes.
//
// Thread safety: a value type; const methods are safe from any thread.
#ifndef KVCACHE_KEY_BLOCK_KEY_H_
#define KVCACHE_KEY_BLOCK_KEY_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace kvcache {

class BlockKey {
 public:
  static constexpr size_t kMaxBytes = 32;

  // The empty key. It is never a valid block key; it stands for "no parent".
  BlockKey() = default;

  // Returns INVALID_ARGUMENT unless 1 <= bytes.size() <= kMaxBytes. Inline:
  // a lookup parses up to 1,024 of them.
  static absl::StatusOr<BlockKey> FromBytes(absl::string_view bytes) {
    if (bytes.empty() || bytes.size() > kMaxBytes) return BadSize(bytes.size());
    BlockKey key;
    key.size_ = static_cast<uint8_t>(bytes.size());
    std::memcpy(key.bytes_.data(), bytes.data(), bytes.size());
    return key;
  }

  // Parses lowercase or uppercase hex (2..64 digits, even count).
  static absl::StatusOr<BlockKey> FromHex(absl::string_view hex);

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return bytes_.data(); }
  absl::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), size_};
  }
  std::string ToBytes() const { return std::string(view()); }
  std::string ToHex() const;

  // Bytes past size() are always zero, so whole arrays compare: as four
  // words, inline (std::array's == called memcmp, 4% of a lookup's time).
  friend bool operator==(const BlockKey& a, const BlockKey& b) {
    static_assert(kMaxBytes == 32, "compared as four words");
    uint64_t x[kMaxBytes / 8], y[kMaxBytes / 8];
    std::memcpy(x, a.bytes_.data(), sizeof(x));
    std::memcpy(y, b.bytes_.data(), sizeof(y));
    return a.size_ == b.size_ &&
           ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
  }
  friend bool operator!=(const BlockKey& a, const BlockKey& b) { return !(a == b); }
  friend bool operator<(const BlockKey& a, const BlockKey& b) { return a.view() < b.view(); }

  template <typename H>
  friend H AbslHashValue(H h, const BlockKey& k) {
    return H::combine(std::move(h), k.view());
  }

 private:
  static absl::Status BadSize(size_t size);

  uint8_t size_ = 0;
  std::array<uint8_t, kMaxBytes> bytes_{};  // zero past size_: operator== relies on it
};

}  // namespace kvcache

#endif  // KVCACHE_KEY_BLOCK_KEY_H_
