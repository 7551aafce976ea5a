#include "key/block_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kvcache {

absl::StatusOr<BlockKey> BlockKey::FromBytes(absl::string_view bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError("block key is empty");
  }
  if (bytes.size() > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("block key is ", bytes.size(), " bytes; at most ", kMaxBytes, " allowed"));
  }
  BlockKey key;
  key.size_ = static_cast<uint8_t>(bytes.size());
  std::memcpy(key.bytes_.data(), bytes.data(), bytes.size());
  return key;
}

absl::StatusOr<BlockKey> BlockKey::FromHex(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("odd number of hex digits in key '", hex, "'"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("key '", hex, "' is not hex"));
    }
  }
  return FromBytes(absl::HexStringToBytes(hex));
}

std::string BlockKey::ToHex() const { return absl::BytesToHexString(view()); }

}  // namespace kvcache
