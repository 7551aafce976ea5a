// libFuzzer target: DecodeNvmeHeader on any sector (the input, zero-padded
// or cut to 4 KiB), as a restart reads whatever the disk holds. It must
// never crash or trust a field before the header's checksum; a header it
// accepts must encode back to a sector that decodes to the same header.
#include <array>
#include <cstdint>
#include <cstring>

#include "offload/nvme_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::array<uint8_t, kvcache::kNvmeSector> sector{};
  std::memcpy(sector.data(), data, std::min(size, sector.size()));
  auto header = kvcache::DecodeNvmeHeader(sector);
  if (!header.ok()) return 0;
  auto encoded = kvcache::EncodeNvmeHeader(*header);
  if (!encoded.ok()) __builtin_trap();
  auto again = kvcache::DecodeNvmeHeader(*encoded);
  if (!again.ok() || again->key != header->key || again->tenant != header->tenant ||
      again->name_space != header->name_space || again->payload_bytes != header->payload_bytes ||
      again->payload_checksum != header->payload_checksum ||
      again->generation != header->generation) {
    __builtin_trap();
  }
  return 0;
}

