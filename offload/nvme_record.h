// The on-disk record of one block in the NVMe tier: a 4 KiB header sector,
// then the payload, padded to 4 KiB (O_DIRECT needs aligned sizes).
//
// The header names exactly what the block is (key, tenant, namespace), how
// long it is, the payload's XXH3-64, and the generation it was written in;
// its own checksum covers all of that, so a torn or flipped header is found
// before anything trusts it. Fields are little-endian at fixed offsets.
//
// Thread safety: plain functions and values.
#ifndef KVCACHE_OFFLOAD_NVME_RECORD_H_
#define KVCACHE_OFFLOAD_NVME_RECORD_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvcache {

inline constexpr uint64_t kNvmeSector = 4096;
inline constexpr uint32_t kNvmeRecordMagic = 0x524E564B;  // "KVNR"
inline constexpr uint16_t kNvmeRecordVersion = 1;
inline constexpr size_t kNvmeMaxKeyBytes = 32;
inline constexpr size_t kNvmeMaxTenantBytes = 255;
inline constexpr size_t kNvmeMaxNamespaceBytes = 1024;

struct NvmeRecordHeader {
  std::string key;        // 1..32 bytes
  std::string tenant;     // 0..255 bytes
  std::string name_space;  // 0..1024 bytes
  uint64_t payload_bytes = 0;
  uint64_t payload_checksum = 0;  // XXH3-64, as BlockChecksum
  uint64_t generation = 0;
  int64_t created_micros = 0;
};

// Sectors a record of `payload_bytes` occupies, header included, in bytes.
uint64_t NvmeRecordBytes(uint64_t payload_bytes);

// The header sector. INVALID_ARGUMENT if a field is out of its range.
absl::StatusOr<std::array<uint8_t, kNvmeSector>> EncodeNvmeHeader(const NvmeRecordHeader& h);

// DATA_LOSS if the sector is not a header this version wrote intact (magic,
// version, lengths, header checksum); never trusts a field before that.
absl::StatusOr<NvmeRecordHeader> DecodeNvmeHeader(absl::Span<const uint8_t> sector);

}  // namespace kvcache

#endif  // KVCACHE_OFFLOAD_NVME_RECORD_H_
