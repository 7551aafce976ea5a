// Huge pages for shared memory (a memfd) without any kernel setting.
//
// Copies out of a memfd ran 13-15 GB/s with 4 KiB pages and 21-25 GB/s with
// 2 MiB pages on our VMs (TLB misses are dear under virtualization). The
// kernel only gives a memfd huge pages on its own when
// /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it, and that is
// "never" on Debian. MADV_COLLAPSE (Linux 6.1) turns a range into huge pages
// whatever that setting says (unless it is "deny"), and the file keeps them:
// every process that maps the file 2 MiB-aligned then maps them whole.
//
// Linux only. Every function here is best effort: where the kernel refuses,
// the memory is still there, in small pages.
#ifndef KVCACHE_COMMON_HUGE_PAGES_H_
#define KVCACHE_COMMON_HUGE_PAGES_H_

#include <cstdint>
#include <string>

namespace kvcache {

inline constexpr uint64_t kHugePageBytes = 2ull << 20;

// mmap(fd, 0..bytes) with `prot` and MAP_SHARED at a 2 MiB-aligned address,
// so that the file's huge pages can be mapped whole. Returns MAP_FAILED (and
// leaves errno) on failure. Unmap with munmap(result, bytes).
void* MapSharedAligned(int fd, uint64_t bytes, int prot);

// What PopulateWithHugePages did.
struct HugePopulation {
  uint64_t regions = 0;       // whole 2 MiB regions in the range
  uint64_t huge_regions = 0;  // of those, now one huge page each
  std::string refusal;        // why the kernel refused one, if it did

  // One line for a banner: "backed by 2 MiB pages (MADV_COLLAPSE)", or by
  // 4 KiB pages and why, or a mix.
  std::string Describe() const;
};

// Faults in every page of [base, base + bytes) of a shared mapping made by
// MapSharedAligned, as 2 MiB pages where the kernel allows. Each 2 MiB region
// gets one small page written and is then collapsed, which allocates one
// zeroed huge page: 3-10x faster here than faulting in 512 small pages. A
// region the kernel will not collapse (old kernel, shmem_enabled "deny", no
// free huge page) is faulted in with small pages instead. REQUIRES: no one
// has written to the range yet (the caller just created it), base is 2 MiB
// aligned, and the range is not pinned (collapse moves pages).
HugePopulation PopulateWithHugePages(uint8_t* base, uint64_t bytes);

// Faults in every page of [base, base + bytes) for writing, with whatever
// pages the kernel gives.
void PopulateForWrite(uint8_t* base, uint64_t bytes);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_HUGE_PAGES_H_
