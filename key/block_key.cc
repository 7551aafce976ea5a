#include "key/block_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kvcache {

absl::Status BlockKey::BadSize(size_t size) {
  if (size == 0) return absl::InvalidArgumentError("block key is empty");
  return absl::InvalidArgumentError(
      absl::StrCat("block key is ", size, " bytes; at most ", kMaxBytes, " allowed"));
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
