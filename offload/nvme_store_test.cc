#include "offload/nvme_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "key/checksum.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

// A block's payload in 4 KiB-aligned memory with room to the next 4 KiB.
struct Payload {
  explicit Payload(size_t n, uint8_t seed)
      : size(n), mem(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096 + 4096)),
                     &std::free) {
    for (size_t i = 0; i < n; ++i) mem.get()[i] = static_cast<uint8_t>(seed * 31 + i * 7);
  }
  // Pieces as arena pages would give them: 8 KiB each, the last shorter.
  std::vector<absl::Span<const uint8_t>> Pieces() const {
    std::vector<absl::Span<const uint8_t>> p;
    for (size_t at = 0; at < size; at += 8192) p.push_back({mem.get() + at, std::min<size_t>(8192, size - at)});
    return p;
  }
  std::vector<absl::Span<uint8_t>> Writable() {
    std::vector<absl::Span<uint8_t>> p;
    for (size_t at = 0; at < size; at += 8192) p.push_back({mem.get() + at, std::min<size_t>(8192, size - at)});
    return p;
  }
  uint64_t Checksum() const { return BlockChecksum({mem.get(), size}); }
  bool SameAs(const Payload& o) const { return size == o.size && std::memcmp(mem.get(), o.mem.get(), size) == 0; }

  size_t size;
  std::unique_ptr<uint8_t[], decltype(&std::free)> mem;
};

NvmeBlockId Id(int i) { return {"tenant", "ns", "key-" + std::to_string(i)}; }

class NvmeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::remove_all(dir_); }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenStore(uint64_t bytes = 4 << 20) {
    store_.reset();
    NvmeStore::Options options;
    options.dir = dir_;
    options.bytes = bytes;
    auto s = NvmeStore::Open(options);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  absl::Status Put(int i, const Payload& p) {
    return store_->Write(Id(i), i > 0 ? Id(i - 1).key : "", p.Checksum(), p.Pieces());
  }
  absl::Status Get(int i, Payload& out) { return store_->Read(Id(i), out.Writable()); }
  // Flips one byte of blocks.data, behind the store's back.
  void FlipByte(uint64_t at) {
    const int fd = open((dir_ + "/blocks.data").c_str(), O_RDWR);
    uint8_t b = 0;
    ASSERT_EQ(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    ASSERT_EQ(pwrite(fd, &b, 1, at), 1);
    fsync(fd);
    close(fd);
  }

  const std::string dir_ = ::testing::TempDir() + "/nvme_store_test";
  std::unique_ptr<NvmeStore> store_;
};

TEST_F(NvmeStoreTest, WritesAndReadsBackByteExact) {
  OpenStore();
  Payload p(20000, 1);  // 3 pieces, the last partial
  ASSERT_TRUE(Put(0, p).ok());
  auto e = store_->Find(Id(0));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->payload_bytes, 20000u);
  EXPECT_EQ(e->checksum, p.Checksum());
  EXPECT_EQ(store_->blocks(), 1u);
  EXPECT_EQ(store_->used_bytes(), NvmeRecordBytes(20000));
  Payload back(20000, 0);
  ASSERT_TRUE(Get(0, back).ok());
  EXPECT_TRUE(back.SameAs(p));
  EXPECT_EQ(Put(0, p).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Read(Id(9), back.Writable()).code(), absl::StatusCode::kNotFound);
}

TEST_F(NvmeStoreTest, RestartFindsEveryBlockAndReusesNoExtent) {
  OpenStore();
  std::vector<std::unique_ptr<Payload>> payloads;
  for (int i = 0; i < 20; ++i) {
    payloads.push_back(std::make_unique<Payload>(4096 * (1 + i % 5) + i, i));
    ASSERT_TRUE(Put(i, *payloads.back()).ok()) << i;
  }
  const uint64_t used = store_->used_bytes();
  OpenStore();  // closes, then opens the same directory
  EXPECT_EQ(store_->blocks(), 20u);
  EXPECT_EQ(store_->used_bytes(), used);
  payloads.push_back(std::make_unique<Payload>(50000, 99));
  ASSERT_TRUE(Put(20, *payloads.back()).ok());  // must not land on an old block
  for (int i = 0; i <= 20; ++i) {
    Payload back(payloads[i]->size, 0);
    ASSERT_TRUE(Get(i, back).ok()) << i;
    EXPECT_TRUE(back.SameAs(*payloads[i])) << i;
  }
  EXPECT_EQ(store_->Find(Id(5))->parent, Id(4).key);
  int listed = 0;  // ForEach gives back every id as written, with its entry
  store_->ForEach([&](const NvmeBlockId& id, const NvmeEntry& e) {
    ++listed;
    EXPECT_EQ(id.tenant, Id(0).tenant);
    EXPECT_EQ(id.name_space, Id(0).name_space);
    absl::StatusOr<NvmeEntry> found = store_->Find(id);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->offset, e.offset);
  });
  EXPECT_EQ(listed, 21);
}

// Ways an index can be lost while the daemon is down.
enum class IndexDamage { kCurrentGarbage, kCurrentNamesAMissingManifest, kEveryFileOverwritten };

TEST_F(NvmeStoreTest, AnUnreadableIndexIsSetAsideAndTheStoreStartsEmpty) {
  for (IndexDamage damage : {IndexDamage::kCurrentGarbage, IndexDamage::kCurrentNamesAMissingManifest,
                             IndexDamage::kEveryFileOverwritten}) {
    SCOPED_TRACE(static_cast<int>(damage));
    store_.reset();
    std::filesystem::remove_all(dir_);
    OpenStore();
    Payload p(9000, 3);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(i, p).ok());
    store_.reset();
    const std::string index = dir_ + "/index";
    for (const auto& f : std::filesystem::directory_iterator(index)) {
      const std::string name = f.path().filename();
      const bool current = name == "CURRENT";
      if (damage == IndexDamage::kEveryFileOverwritten ||
          (current && damage == IndexDamage::kCurrentGarbage)) {
        std::ofstream(f.path(), std::ios::binary | std::ios::trunc) << std::string(300, '\x5a');
      } else if (current) {
        std::ofstream(f.path(), std::ios::trunc) << "MANIFEST-999999\n";
      }
    }
    OpenStore();
    EXPECT_EQ(store_->blocks(), 0u);
    EXPECT_EQ(store_->used_bytes(), 0u);
    EXPECT_NE(store_->open_note().find("moved to " + index + ".corrupt"), std::string::npos)
        << store_->open_note();
    EXPECT_TRUE(std::filesystem::exists(index + ".corrupt/CURRENT"));
    Payload back(9000, 0);
    EXPECT_EQ(Get(0, back).code(), absl::StatusCode::kNotFound);  // its old records: unread
    Payload q(9000, 4);
    ASSERT_TRUE(Put(7, q).ok());  // the tier works from empty
    OpenStore();
    EXPECT_TRUE(store_->open_note().empty()) << store_->open_note();
    EXPECT_EQ(store_->blocks(), 1u);
    ASSERT_TRUE(Get(7, back).ok());
    EXPECT_TRUE(back.SameAs(q));
  }
}

TEST_F(NvmeStoreTest, ASecondOpenOfTheSameFilesIsRefused) {
  OpenStore();
  NvmeStore::Options options;
  options.dir = dir_;
  options.bytes = 4 << 20;
  absl::StatusOr<std::unique_ptr<NvmeStore>> second = NvmeStore::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos)
      << second.status();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/index.corrupt"));  // the index was not touched
}

TEST_F(NvmeStoreTest, FlippedPayloadOrHeaderIsAMissAndDropped) {
  OpenStore();
  Payload a(12000, 1), b(12000, 2);
  ASSERT_TRUE(Put(0, a).ok());
  ASSERT_TRUE(Put(1, b).ok());
  FlipByte(store_->Find(Id(0))->offset + 4096 + 5000);  // payload of block 0
  FlipByte(store_->Find(Id(1))->offset + 60);           // header of block 1
  Payload back(12000, 0);
  EXPECT_EQ(Get(0, back).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Get(1, back).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->corrupt_drops(), 2u);
  EXPECT_EQ(store_->blocks(), 0u);
  EXPECT_EQ(store_->Find(Id(0)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->used_bytes(), 0u);  // their extents are free again
}

TEST_F(NvmeStoreTest, BatchesWriteAndReadManyBlocksEachWithItsOwnStatus) {
  OpenStore();
  std::vector<std::unique_ptr<Payload>> payloads;
  ASSERT_TRUE(Put(3, Payload(8192, 1)).ok());  // block 3 exists already
  std::vector<std::vector<absl::Span<const uint8_t>>> pieces(6);
  std::vector<NvmeWrite> writes;
  for (int i = 0; i < 6; ++i) {
    payloads.push_back(std::make_unique<Payload>(20000 + 4096 * i, 50 + i));
    pieces[i] = payloads[i]->Pieces();
    writes.push_back({Id(i), "", payloads[i]->Checksum(), pieces[i]});
  }
  std::vector<absl::Status> wrote = store_->WriteBatch(writes);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(wrote[i].code(), i == 3 ? absl::StatusCode::kAlreadyExists : absl::StatusCode::kOk)
        << i;
  }
  std::vector<std::unique_ptr<Payload>> back;
  std::vector<std::vector<absl::Span<uint8_t>>> dest(6);
  std::vector<NvmeRead> reads;
  for (int i = 0; i < 6; ++i) {
    back.push_back(std::make_unique<Payload>(payloads[i]->size, 0));
    dest[i] = back[i]->Writable();
    if (i != 3) reads.push_back({Id(i), dest[i]});
  }
  reads.push_back({Id(99), dest[0]});  // not stored
  std::vector<absl::Status> got = store_->ReadBatch(reads);
  ASSERT_EQ(got.size(), 6u);
  for (int r = 0; r < 5; ++r) EXPECT_TRUE(got[r].ok()) << r << ": " << got[r];
  EXPECT_EQ(got[5].code(), absl::StatusCode::kNotFound);
  for (int i = 0; i < 6; ++i) {
    if (i != 3) EXPECT_TRUE(back[i]->SameAs(*payloads[i])) << i;
  }
}

TEST_F(NvmeStoreTest, FullStoreSaysSoAndRemovalMakesRoom) {
  OpenStore(64 << 10);  // 16 sectors: three records of 16 KiB + header
  Payload p(16384, 3);
  int stored = 0;
  absl::Status s;
  while ((s = Put(stored, p)).ok()) ++stored;
  EXPECT_EQ(stored, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store_->Remove(Id(1)).ok());
  EXPECT_EQ(store_->Remove(Id(1)).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Put(7, p).ok());
}

}  // namespace
}  // namespace kvcache
