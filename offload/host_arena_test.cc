#include "offload/host_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

#include "gpu/gpu_probe.h"
#include "gpu/pinned_memory.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

// ShmemPmdMapped (KiB) of the arena's mapping in /proc/self/smaps.
int64_t ArenaPmdMappedKib(const HostArena& arena) {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%lx-", reinterpret_cast<unsigned long>(arena.PageData(0)));
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) in_mapping = true;
    if (in_mapping && line.rfind("ShmemPmdMapped:", 0) == 0) {
      return std::stoll(line.substr(sizeof("ShmemPmdMapped:") - 1));
    }
  }
  return -1;
}

std::unique_ptr<HostArena> MakeArena(uint64_t capacity, uint32_t page) {
  auto arena = HostArena::Create({.capacity_bytes = capacity, .page_bytes = page});
  EXPECT_TRUE(arena.ok()) << arena.status();
  return std::move(*arena);
}

TEST(HostArenaTest, RejectsBadOptions) {
  EXPECT_EQ(HostArena::Create({.capacity_bytes = 1 << 20, .page_bytes = 3000}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HostArena::Create({.capacity_bytes = 100, .page_bytes = 4096}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HostArenaTest, AllocatesWholePagesAllOrNothing) {
  auto arena = MakeArena(16 * 4096, 4096);
  EXPECT_EQ(arena->capacity_bytes(), 16u * 4096);
  auto a = arena->Allocate(10 * 4096 + 1);  // 11 pages
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->page_count(), 11u);
  EXPECT_EQ(arena->used_bytes(), 11u * 4096);
  auto b = arena->Allocate(6 * 4096);  // only 5 left
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(arena->used_bytes(), 11u * 4096);
  auto huge = arena->Allocate(~0ull);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  auto empty = arena->Allocate(0);  // a zero-byte block still takes a page
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->page_count(), 1u);
}

TEST(HostArenaTest, RunFreesPagesOnDestruction) {
  auto arena = MakeArena(8 * 4096, 4096);
  {
    auto run = arena->Allocate(8 * 4096);
    ASSERT_TRUE(run.ok());
    PageRun moved = std::move(*run);
    EXPECT_EQ(arena->used_bytes(), 8u * 4096);
  }
  EXPECT_EQ(arena->used_bytes(), 0u);
}

TEST(HostArenaTest, BytesRoundTripAcrossPageBoundaries) {
  auto arena = MakeArena(64 * 4096, 4096);
  const uint64_t size = 3 * 4096 + 123;
  auto run = arena->Allocate(size);
  ASSERT_TRUE(run.ok());
  std::vector<uint8_t> data(size);
  std::iota(data.begin(), data.end(), 7);
  run->Write(0, absl::MakeSpan(data).first(5000));
  run->Write(5000, absl::MakeSpan(data).subspan(5000));
  std::vector<uint8_t> out(size);
  run->Read(0, absl::MakeSpan(out));
  EXPECT_EQ(out, data);
  std::vector<uint8_t> mid(4100);
  run->Read(4000, absl::MakeSpan(mid));
  EXPECT_TRUE(std::equal(mid.begin(), mid.end(), data.begin() + 4000));
  size_t pieces = 0, total = 0;
  run->ForEachPiece(4000, 4100, [&](const uint8_t*, size_t n) {
    ++pieces;
    total += n;
  });
  EXPECT_EQ(pieces, 2u);
  EXPECT_EQ(total, 4100u);
}

// What a local client gets is the arena's fd: it may map and read it, and
// see the daemon's later writes, but never write, resize or remap it
// writable, not even through a fresh open of /proc/self/fd/N.
TEST(HostArenaTest, SharedFdIsReadOnlyForEveryoneButTheArena) {
  auto arena = MakeArena(16 * 4096, 4096);
  ASSERT_GE(arena->fd(), 0);
  ASSERT_TRUE(arena->sealed());
  const size_t bytes = 16 * 4096;
  EXPECT_EQ(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, arena->fd(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(arena->fd(), 0), 0);
  EXPECT_NE(write(arena->fd(), "x", 1), 1);
  const std::string proc = "/proc/self/fd/" + std::to_string(arena->fd());
  const int reopened = open(proc.c_str(), O_RDWR | O_CLOEXEC);
  if (reopened >= 0) {
    EXPECT_EQ(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0), MAP_FAILED);
    close(reopened);
  }

  void* view = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, arena->fd(), 0);
  ASSERT_NE(view, MAP_FAILED);
  EXPECT_NE(mprotect(view, bytes, PROT_READ | PROT_WRITE), 0);
  auto run = arena->Allocate(100);
  ASSERT_TRUE(run.ok());
  const std::string data(100, 'k');
  run->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  const auto* page = arena->PageData(0);
  run->ForEachPiece(0, 100, [&](const uint8_t* p, size_t n) {
    const auto* seen = static_cast<const uint8_t*>(view) + (p - page);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(seen), n), data.substr(0, n));
  });
  munmap(view, bytes);
}

TEST(HostArenaTest, APrefaultedArenaHasHugePagesWithoutAnyKernelSetting) {
  auto arena = HostArena::Create({.capacity_bytes = 8 << 20, .page_bytes = 1 << 20});
  ASSERT_TRUE(arena.ok()) << arena.status();
  ASSERT_GE((*arena)->fd(), 0);
  const std::string& backing = (*arena)->page_backing();
  std::printf("this kernel: %s\n", backing.c_str());
  // What it says is what the kernel mapped (MADV_COLLAPSE: Linux 6.1+).
  const bool huge = backing == "backed by 2 MiB pages (MADV_COLLAPSE)";
  EXPECT_TRUE(huge || backing.rfind("backed by 4 KiB pages (MADV_COLLAPSE: ", 0) == 0) << backing;
  EXPECT_EQ(ArenaPmdMappedKib(**arena), huge ? 8 << 10 : 0);
}

TEST(HostArenaTest, WithoutPrefaultTheKernelSettingDecides) {
  auto arena =
      HostArena::Create({.capacity_bytes = 4 << 20, .page_bytes = 1 << 20, .prefault = false});
  ASSERT_TRUE(arena.ok()) << arena.status();
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string line;
  std::getline(in, line);
  const std::string mode = line.substr(line.find('[') + 1, line.find(']') - line.find('[') - 1);
  const std::string& backing = (*arena)->page_backing();
  EXPECT_NE(backing.find("transparent_hugepage/shmem_enabled: " + mode), std::string::npos)
      << backing;
  const bool huge =
      mode == "always" || mode == "within_size" || mode == "advise" || mode == "force";
  EXPECT_EQ(backing.rfind(huge ? "backed by 2 MiB pages" : "backed by 4 KiB pages", 0), 0u)
      << backing;
}

// Asked to pin, the arena is pinned where a GPU is usable and says why not
// elsewhere; either way it works the same.
TEST(HostArenaTest, PinningForTheGpuIsReportedEitherWay) {
  HostArena::Options options{.capacity_bytes = 4 << 20, .page_bytes = 1 << 20};
  auto plain = HostArena::Create(options);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE((*plain)->pinned_for_gpu());
  EXPECT_EQ((*plain)->gpu_pinning(), "not pinned for GPU DMA (not asked)");

  options.pin_for_gpu = true;
  auto arena = HostArena::Create(options);
  ASSERT_TRUE(arena.ok()) << arena.status();
  const GpuProbe gpu = ProbeGpu();
  if (gpu.device_count > 0) {
    EXPECT_TRUE((*arena)->pinned_for_gpu());
    EXPECT_EQ((*arena)->gpu_pinning(), "pinned for GPU DMA");
    EXPECT_TRUE(IsPinned((*arena)->PageData(0)));
    EXPECT_TRUE(IsPinned((*arena)->PageData(3) + (1 << 20) - 1));
  } else {
    EXPECT_FALSE((*arena)->pinned_for_gpu());
    EXPECT_NE((*arena)->gpu_pinning().find("not pinned for GPU DMA ("), std::string::npos)
        << (*arena)->gpu_pinning();
  }
  auto run = (*arena)->Allocate(2 << 20);
  ASSERT_TRUE(run.ok());
  std::vector<uint8_t> bytes(2 << 20, 7), back(2 << 20);
  run->Write(0, bytes);
  run->Read(0, absl::MakeSpan(back));
  EXPECT_EQ(back, bytes);
}

}  // namespace
}  // namespace kvcache
