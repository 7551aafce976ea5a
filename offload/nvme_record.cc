#include "offload/nvme_record.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "key/checksum.h"

namespace kvcache {
namespace {

// Fixed offsets in the header sector.
constexpr size_t kMagicAt = 0, kVersionAt = 4, kKeyLenAt = 6, kTenantLenAt = 7, kNsLenAt = 8;
constexpr size_t kPayloadBytesAt = 16, kPayloadChecksumAt = 24, kGenerationAt = 32;
constexpr size_t kCreatedAt = 40, kKeyAt = 48, kTenantAt = kKeyAt + kNvmeMaxKeyBytes;
constexpr size_t kNsAt = kTenantAt + kNvmeMaxTenantBytes;
constexpr size_t kHeaderChecksumAt = kNvmeSector - 8;
static_assert(kNsAt + kNvmeMaxNamespaceBytes <= kHeaderChecksumAt);

template <typename T>
void Put(uint8_t* at, T v) {
  std::memcpy(at, &v, sizeof(v));  // x86-64 and aarch64 Linux are little-endian
}
template <typename T>
T Get(const uint8_t* at) {
  T v;
  std::memcpy(&v, at, sizeof(v));
  return v;
}

uint64_t HeaderChecksum(const uint8_t* sector) {
  return BlockChecksum({sector, kHeaderChecksumAt});
}

}  // namespace

uint64_t NvmeRecordBytes(uint64_t payload_bytes) {
  return kNvmeSector + (payload_bytes + kNvmeSector - 1) / kNvmeSector * kNvmeSector;
}

absl::StatusOr<std::array<uint8_t, kNvmeSector>> EncodeNvmeHeader(const NvmeRecordHeader& h) {
  if (h.key.empty() || h.key.size() > kNvmeMaxKeyBytes || h.tenant.size() > kNvmeMaxTenantBytes ||
      h.name_space.size() > kNvmeMaxNamespaceBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record header fields out of range: key ", h.key.size(), " bytes (1-32), tenant ",
        h.tenant.size(), " (<=255), namespace ", h.name_space.size(), " (<=1024)"));
  }
  std::array<uint8_t, kNvmeSector> s{};
  Put<uint32_t>(&s[kMagicAt], kNvmeRecordMagic);
  Put<uint16_t>(&s[kVersionAt], kNvmeRecordVersion);
  s[kKeyLenAt] = static_cast<uint8_t>(h.key.size());
  s[kTenantLenAt] = static_cast<uint8_t>(h.tenant.size());
  Put<uint16_t>(&s[kNsLenAt], static_cast<uint16_t>(h.name_space.size()));
  Put<uint64_t>(&s[kPayloadBytesAt], h.payload_bytes);
  Put<uint64_t>(&s[kPayloadChecksumAt], h.payload_checksum);
  Put<uint64_t>(&s[kGenerationAt], h.generation);
  Put<int64_t>(&s[kCreatedAt], h.created_micros);
  std::memcpy(&s[kKeyAt], h.key.data(), h.key.size());
  std::memcpy(&s[kTenantAt], h.tenant.data(), h.tenant.size());
  std::memcpy(&s[kNsAt], h.name_space.data(), h.name_space.size());
  Put<uint64_t>(&s[kHeaderChecksumAt], HeaderChecksum(s.data()));
  return s;
}

absl::StatusOr<NvmeRecordHeader> DecodeNvmeHeader(absl::Span<const uint8_t> sector) {
  if (sector.size() < kNvmeSector) return absl::DataLossError("short header sector");
  const uint8_t* s = sector.data();
  if (Get<uint32_t>(s + kMagicAt) != kNvmeRecordMagic) {
    return absl::DataLossError("not a record header (bad magic)");
  }
  if (Get<uint16_t>(s + kVersionAt) != kNvmeRecordVersion) {
    return absl::DataLossError(
        absl::StrCat("record header version ", Get<uint16_t>(s + kVersionAt), " unknown"));
  }
  if (Get<uint64_t>(s + kHeaderChecksumAt) != HeaderChecksum(s)) {
    return absl::DataLossError("record header checksum mismatch");
  }
  const size_t key_len = s[kKeyLenAt], tenant_len = s[kTenantLenAt];
  const size_t ns_len = Get<uint16_t>(s + kNsLenAt);
  if (key_len == 0 || key_len > kNvmeMaxKeyBytes || ns_len > kNvmeMaxNamespaceBytes) {
    return absl::DataLossError("record header lengths out of range");
  }
  NvmeRecordHeader h;
  h.key.assign(reinterpret_cast<const char*>(s + kKeyAt), key_len);
  h.tenant.assign(reinterpret_cast<const char*>(s + kTenantAt), tenant_len);
  h.name_space.assign(reinterpret_cast<const char*>(s + kNsAt), ns_len);
  h.payload_bytes = Get<uint64_t>(s + kPayloadBytesAt);
  h.payload_checksum = Get<uint64_t>(s + kPayloadChecksumAt);
  h.generation = Get<uint64_t>(s + kGenerationAt);
  h.created_micros = Get<int64_t>(s + kCreatedAt);
  return h;
}

}  // namespace kvcache
