#include "offload/nvme_record.h"

#include "gtest/gtest.h"

namespace kvcache {
namespace {

NvmeRecordHeader Sample() {
  NvmeRecordHeader h;
  h.key = std::string(32, '\x7f');
  h.tenant = "tenant-a";
  h.name_space = "llama-3-8b/fp16/512";
  h.payload_bytes = 2 << 20;
  h.payload_checksum = 0x0123456789abcdefull;
  h.generation = 42;
  h.created_micros = 1700000000000000;
  return h;
}

TEST(NvmeRecordTest, RoundTrips) {
  auto sector = EncodeNvmeHeader(Sample());
  ASSERT_TRUE(sector.ok()) << sector.status();
  auto h = DecodeNvmeHeader(*sector);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->key, Sample().key);
  EXPECT_EQ(h->tenant, "tenant-a");
  EXPECT_EQ(h->name_space, "llama-3-8b/fp16/512");
  EXPECT_EQ(h->payload_bytes, 2u << 20);
  EXPECT_EQ(h->payload_checksum, 0x0123456789abcdefull);
  EXPECT_EQ(h->generation, 42u);
  EXPECT_EQ(h->created_micros, 1700000000000000);
  EXPECT_EQ(NvmeRecordBytes(2 << 20), 4096u + (2u << 20));
  EXPECT_EQ(NvmeRecordBytes(1), 8192u);
  EXPECT_EQ(NvmeRecordBytes(0), 4096u);
}

// A flipped bit anywhere in the sector is caught, before any field is used.
TEST(NvmeRecordTest, AnyFlippedBitIsDataLoss) {
  auto sector = EncodeNvmeHeader(Sample());
  ASSERT_TRUE(sector.ok());
  for (size_t at = 0; at < kNvmeSector; at += 7) {
    auto bad = *sector;
    bad[at] ^= 0x10;
    EXPECT_EQ(DecodeNvmeHeader(bad).status().code(), absl::StatusCode::kDataLoss) << "byte " << at;
  }
  std::array<uint8_t, kNvmeSector> zeros{};
  EXPECT_EQ(DecodeNvmeHeader(zeros).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeNvmeHeader(absl::MakeSpan(sector->data(), 100)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(NvmeRecordTest, RefusesFieldsOutOfRange) {
  NvmeRecordHeader h = Sample();
  h.key.clear();
  EXPECT_EQ(EncodeNvmeHeader(h).status().code(), absl::StatusCode::kInvalidArgument);
  h = Sample();
  h.key = std::string(33, 'k');
  EXPECT_EQ(EncodeNvmeHeader(h).status().code(), absl::StatusCode::kInvalidArgument);
  h = Sample();
  h.name_space = std::string(1025, 'n');
  EXPECT_EQ(EncodeNvmeHeader(h).status().code(), absl::StatusCode::kInvalidArgument);
  h = Sample();
  h.tenant = std::string(256, 't');
  EXPECT_EQ(EncodeNvmeHeader(h).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcache
