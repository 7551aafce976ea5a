#include "common/huge_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1
#endif

constexpr uint64_t kSmallPageBytes = 4096;

}  // namespace

void* MapSharedAligned(int fd, uint64_t bytes, int prot) {
  // Reserve room for the alignment slack, then map over the aligned part.
  void* reserved = mmap(nullptr, bytes + kHugePageBytes, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return MAP_FAILED;
  const uintptr_t start = reinterpret_cast<uintptr_t>(reserved);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  void* mapped = mmap(reinterpret_cast<void*>(aligned), bytes, prot, MAP_SHARED | MAP_FIXED, fd, 0);
  if (mapped == MAP_FAILED) {
    const int err = errno;
    munmap(reserved, bytes + kHugePageBytes);
    errno = err;
    return MAP_FAILED;
  }
  // Give back the slack on both sides.
  if (aligned > start) munmap(reserved, aligned - start);
  const uintptr_t end = aligned + bytes, reserved_end = start + bytes + kHugePageBytes;
  if (reserved_end > end) munmap(reinterpret_cast<void*>(end), reserved_end - end);
  return mapped;
}

void PopulateForWrite(uint8_t* base, uint64_t bytes) {
  if (bytes == 0 || madvise(base, bytes, MADV_POPULATE_WRITE) == 0) return;
  // Older kernels: touch one byte per small page.
  for (uint64_t off = 0; off < bytes; off += kSmallPageBytes) base[off] = 0;
}

HugePopulation PopulateWithHugePages(uint8_t* base, uint64_t bytes) {
  HugePopulation result;
  result.regions = bytes / kHugePageBytes;
  bool collapse_supported = true;
  for (uint64_t off = 0; off < result.regions * kHugePageBytes; off += kHugePageBytes) {
    uint8_t* region = base + off;
    if (collapse_supported) {
      // Collapse wants at least one page present; it then allocates the huge
      // page zeroed and copies that one page in.
      PopulateForWrite(region, kSmallPageBytes);
      if (madvise(region, kHugePageBytes, MADV_COLLAPSE) == 0) {
        ++result.huge_regions;
        continue;
      }
      const int err = errno;
      if (result.refusal.empty()) result.refusal = std::strerror(err);
      // EINVAL: the kernel has no MADV_COLLAPSE or shmem_enabled is "deny";
      // no other region will do better. (EAGAIN/ENOMEM may pass.)
      if (err == EINVAL) collapse_supported = false;
    }
    PopulateForWrite(region, kHugePageBytes);
  }
  const uint64_t whole = result.regions * kHugePageBytes;
  PopulateForWrite(base + whole, bytes - whole);
  return result;
}

std::string HugePopulation::Describe() const {
  if (regions > 0 && huge_regions == regions) return "backed by 2 MiB pages (MADV_COLLAPSE)";
  if (huge_regions == 0) {
    return absl::StrCat(
        "backed by 4 KiB pages (MADV_COLLAPSE: ", refusal.empty() ? "region under 2 MiB" : refusal,
        "; copies run up to 1.6x slower, see README)");
  }
  return absl::StrCat("backed by 2 MiB pages for ", huge_regions, " of ", regions,
                      " regions, 4 KiB pages for the rest (MADV_COLLAPSE: ", refusal, ")");
}

}  // namespace kvcache
