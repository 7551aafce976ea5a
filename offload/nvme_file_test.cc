#include "offload/nvme_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

using Aligned = std::unique_ptr<uint8_t[], decltype(&std::free)>;

Aligned Buffer(size_t bytes, uint8_t fill) {
  Aligned b(static_cast<uint8_t*>(std::aligned_alloc(4096, bytes)), &std::free);
  std::memset(b.get(), fill, bytes);
  return b;
}

class NvmeFileTest : public ::testing::TestWithParam<NvmeFile::Engine> {
 protected:
  std::unique_ptr<NvmeFile> Open(uint64_t bytes, NvmeFaultPoint* faults = nullptr) {
    NvmeFile::Options options;
    options.faults = faults;
    options.path = path_;
    options.bytes = bytes;
    options.engine = GetParam();
    options.queue_depth = 4;
    auto f = NvmeFile::Open(options);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(*f) : nullptr;
  }
  void TearDown() override { unlink(path_.c_str()); }

  const std::string path_ = ::testing::TempDir() + "/nvme_file_test.data";
};

TEST_P(NvmeFileTest, WritesThenReadsBackABatch) {
  auto file = Open(1 << 20);
  ASSERT_NE(file, nullptr);
  EXPECT_STREQ(file->engine_name(),
               GetParam() == NvmeFile::Engine::kThreads ? "threads" : "io_uring");
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20);  // preallocated

  // Ten ops at scattered offsets, more than the queue depth, sizes 4-64 KiB.
  std::vector<Aligned> out, in;
  std::vector<NvmeIo> writes, reads;
  for (int i = 0; i < 10; ++i) {
    const uint64_t len = 4096u * (1 + i % 16);
    out.push_back(Buffer(len, static_cast<uint8_t>('a' + i)));
    in.push_back(Buffer(len, 0));
    writes.push_back({true, 65536u * i, out.back().get(), len});
    reads.push_back({false, 65536u * i, in.back().get(), len});
  }
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(writes)).ok());
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(reads)).ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(std::memcmp(out[i].get(), in[i].get(), reads[i].length), 0) << "op " << i;
  }
}

TEST_P(NvmeFileTest, VectoredOpsGatherAndScatterPieces) {
  auto file = Open(1 << 20);
  ASSERT_NE(file, nullptr);
  // Three records of three scattered pieces each (4, 8 and 12 KiB).
  std::vector<Aligned> out, in;
  std::vector<NvmeIo> writes(3), reads(3);
  for (int r = 0; r < 3; ++r) {
    writes[r].write = true;
    writes[r].offset = reads[r].offset = 131072u * r;
    for (int p = 0; p < 3; ++p) {
      const size_t len = 4096u * (p + 1);
      out.push_back(Buffer(len, static_cast<uint8_t>(16 * r + p)));
      in.push_back(Buffer(len, 0xee));
      writes[r].pieces.push_back({out.back().get(), len});
      reads[r].pieces.push_back({in.back().get(), len});
      writes[r].length += len;
      reads[r].length += len;
    }
  }
  std::atomic<int> called{0};
  for (NvmeIo& r : reads) r.on_done = [&](NvmeIo& op) { called += op.status.ok() ? 1 : 100; };
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(writes)).ok());
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(reads)).ok());
  EXPECT_EQ(called.load(), 3);  // once per op, after it completed
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(std::memcmp(out[i].get(), in[i].get(), 4096u * (i % 3 + 1)), 0) << "piece " << i;
  }
  // A piece that is not a multiple of 4 KiB fails its op alone.
  NvmeIo bad;
  bad.offset = 0;
  bad.pieces = {{in[0].get(), 100}};
  bad.length = 100;
  std::vector<NvmeIo> mixed = {bad, reads[1]};
  EXPECT_EQ(file->RunBatch(absl::MakeSpan(mixed)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(mixed[1].status.ok());
  EXPECT_EQ(called.load(), 4);  // not for the op that failed
}

TEST_P(NvmeFileTest, RegisteredBuffersReadInPlace) {
  auto file = Open(1 << 20);
  ASSERT_NE(file, nullptr);
  Aligned arena = Buffer(256 << 10, 0);
  const absl::Status registered = file->RegisterBuffers(arena.get(), 256 << 10);
  if (GetParam() == NvmeFile::Engine::kThreads) {
    EXPECT_EQ(registered.code(), absl::StatusCode::kUnimplemented);
  } else {
    EXPECT_TRUE(registered.ok()) << registered;
  }
  std::memset(arena.get(), 'z', 128 << 10);
  NvmeIo write{true, 0, arena.get(), 128 << 10};
  ASSERT_TRUE(file->RunBatch({&write, 1}).ok());
  NvmeIo read{false, 0, arena.get() + (128 << 10), 128 << 10};
  ASSERT_TRUE(file->RunBatch({&read, 1}).ok());
  EXPECT_EQ(std::memcmp(arena.get(), arena.get() + (128 << 10), 128 << 10), 0);

  // A record gathered from scattered registered pages and an unregistered
  // header, as the NVMe store sends one, reads back in place.
  Aligned header = Buffer(4096, 'h');
  for (int p = 0; p < 4; ++p) std::memset(arena.get() + p * 32768, 'a' + p, 16384);
  NvmeIo gathered{true, 1 << 18};
  gathered.pieces = {{header.get(), 4096},
                     {arena.get() + 3 * 32768, 16384},
                     {arena.get(), 16384},
                     {arena.get() + 32768, 16384}};
  gathered.length = 4096 + 3 * 16384;
  ASSERT_TRUE(file->RunBatch({&gathered, 1}).ok());
  Aligned back = Buffer(4096 + 3 * 16384, 0);
  NvmeIo plain{false, 1 << 18, back.get(), 4096 + 3 * 16384};
  ASSERT_TRUE(file->RunBatch({&plain, 1}).ok());
  EXPECT_EQ(back[0], 'h');
  EXPECT_EQ(back[4096], 'd');
  EXPECT_EQ(back[4096 + 16384], 'a');
  EXPECT_EQ(back[4096 + 2 * 16384 + 16383], 'b');
}

TEST_P(NvmeFileTest, BadOpsFailAloneWithAReason) {
  auto file = Open(64 << 10);
  ASSERT_NE(file, nullptr);
  Aligned buf = Buffer(8192, 'q');
  std::vector<NvmeIo> ops = {
      {true, 100, buf.get(), 4096},           // misaligned offset
      {true, 0, buf.get() + 1, 4096},         // misaligned buffer
      {true, 0, buf.get(), 1000},             // misaligned length
      {true, 60 << 10, buf.get(), 8192},      // past the end
      {true, 4096, buf.get(), 4096},          // fine
  };
  const absl::Status s = file->RunBatch(absl::MakeSpan(ops));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops[2].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops[3].status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(ops[4].status.ok()) << ops[4].status;
}

TEST_P(NvmeFileTest, InjectedFaultsFailOpsUntilCleared) {
  NvmeFaultPoint faults;
  auto file = Open(1 << 20, &faults);
  ASSERT_NE(file, nullptr);
  constexpr uint64_t kLen = 64 << 10;
  Aligned zeros = Buffer(kLen, 0), ones = Buffer(kLen, 1), back = Buffer(kLen, 9);
  std::vector<NvmeIo> clear = {{true, 0, zeros.get(), kLen}};
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(clear)).ok());

  // EIO on writes: nothing reaches the disk, the op says why.
  faults.SetWrites(NvmeFaultPoint::Fault::kEio);
  std::vector<NvmeIo> write = {{true, 0, ones.get(), kLen}};
  absl::Status s = file->RunBatch(absl::MakeSpan(write));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("Input/output error"), std::string::npos) << s;
  std::vector<NvmeIo> read = {{false, 0, back.get(), kLen}};
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(read)).ok());  // reads still work
  EXPECT_EQ(back[0], 0);
  EXPECT_EQ(back[kLen - 1], 0);

  // A short write: the first half lands, the op fails.
  faults.SetWrites(NvmeFaultPoint::Fault::kShort);
  write = {{true, 0, ones.get(), kLen}};
  s = file->RunBatch(absl::MakeSpan(write));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("32768 of 65536"), std::string::npos) << s;
  EXPECT_EQ(write[0].length, kLen);  // the caller's op is given back as it was
  read = {{false, 0, back.get(), kLen}};
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(read)).ok());
  EXPECT_EQ(back[0], 1);
  EXPECT_EQ(back[kLen / 2 - 1], 1);
  EXPECT_EQ(back[kLen / 2], 0);  // torn, as a failing drive leaves it

  // A short read of pieces: the op fails and its on_done never runs.
  faults.Clear();
  faults.SetReads(NvmeFaultPoint::Fault::kShort);
  Aligned a = Buffer(kLen / 2, 7), b = Buffer(kLen / 2, 7);
  bool done_called = false;
  NvmeIo pieces{false, 0, nullptr, kLen};
  pieces.pieces = {{a.get(), kLen / 2}, {b.get(), kLen / 2}};
  pieces.on_done = [&](NvmeIo&) { done_called = true; };
  read = {pieces};
  s = file->RunBatch(absl::MakeSpan(read));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_FALSE(done_called);
  EXPECT_EQ(read[0].pieces.size(), 2u);
  EXPECT_EQ(a[0], 1);  // the first half was read
  EXPECT_EQ(b[0], 7);  // the second never was

  // Cleared: everything works again.
  EXPECT_EQ(faults.injected(), 3u);
  faults.Clear();
  write = {{true, 0, ones.get(), kLen}};
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(write)).ok());
  read = {pieces};
  ASSERT_TRUE(file->RunBatch(absl::MakeSpan(read)).ok());
  EXPECT_TRUE(done_called);
  EXPECT_EQ(b[kLen / 2 - 1], 1);
}

INSTANTIATE_TEST_SUITE_P(Engines, NvmeFileTest,
                         ::testing::Values(NvmeFile::Engine::kIoUring,
                                           NvmeFile::Engine::kThreads),
                         [](const auto& info) {
                           return info.param == NvmeFile::Engine::kThreads ? "Threads" : "IoUring";
                         });

TEST(NvmeFileOpenTest, RefusesBadOptionsAndPaths) {
  NvmeFile::Options options;
  options.path = ::testing::TempDir() + "/x";
  options.bytes = 1000;  // not a multiple of 4 KiB
  EXPECT_EQ(NvmeFile::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.bytes = 4096;
  options.path = ::testing::TempDir();  // a directory
  auto dir = NvmeFile::Open(options);
  EXPECT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find(::testing::TempDir()), std::string::npos) << dir.status();
}

}  // namespace
}  // namespace kvcache
