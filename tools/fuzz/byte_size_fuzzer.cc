// libFuzzer target: ParseByteSize on any text (flags such as
// --host_capacity=64MiB). It must never crash; a size it accepts must parse
// back from its plain number of bytes to the same value.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto bytes = kvcache::ParseByteSize(text);
  if (!bytes.ok()) return 0;
  auto again = kvcache::ParseByteSize(absl::StrCat(*bytes));
  if (!again.ok() || *again != *bytes) __builtin_trap();
  kvcache::FormatBytes(*bytes);
  return 0;
}
