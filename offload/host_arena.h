// The host-DRAM arena: one region mapped at start-up and cut into fixed-size
// pages. A block is a list of pages, so mixed block sizes never fragment it,
// and nothing is allocated on the data path.
//
// The region is a memfd (shared mapping) so that the same-host path can hand
// the fd to local workers. The memfd is sealed once mapped: no one else can
// map it writable or resize it, so local workers only ever read pages. Where
// memfd is unavailable it falls back to an anonymous mapping. Huge pages are
// best effort: a prefaulted memfd is collapsed into 2 MiB pages
// (common/huge_pages.h); otherwise the kernel's THP settings decide.
//
// Thread safety: all methods may be called from any thread. Page memory
// itself is not synchronized: whoever holds a page (PageRun) owns its bytes.
#ifndef KVCACHE_OFFLOAD_HOST_ARENA_H_
#define KVCACHE_OFFLOAD_HOST_ARENA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/mutex.h"
#include "gpu/pinned_memory.h"

namespace kvcache {

class HostArena;

// A set of arena pages holding one block's bytes (or its staging copy). Frees
// its pages when destroyed. Move-only.
class PageRun {
 public:
  PageRun() = default;
  PageRun(PageRun&& other) noexcept;
  PageRun& operator=(PageRun&& other) noexcept;
  PageRun(const PageRun&) = delete;
  PageRun& operator=(const PageRun&) = delete;
  ~PageRun();

  // Logical size in bytes (the pages may hold a little more).
  uint64_t size() const { return size_; }
  size_t page_count() const { return pages_.size(); }
  const std::vector<uint32_t>& pages() const { return pages_; }

  // Takes `more`'s pages onto the end of this run, which grows by
  // more.size(). Lets a block's pages be taken as its bytes arrive.
  // REQUIRES: both from one arena (or this run empty), and every page of
  // this run full (size() is a whole number of pages).
  void Append(PageRun&& more);

  // Copies src into the run at `offset`. REQUIRES: offset + src.size() <= size().
  void Write(uint64_t offset, absl::Span<const uint8_t> src);
  // Copies bytes [offset, offset + dst.size()) out. REQUIRES: in range.
  void Read(uint64_t offset, absl::Span<uint8_t> dst) const;
  // Calls fn(const uint8_t* data, size_t len) for each contiguous piece of
  // [offset, offset + length), in order. REQUIRES: in range.
  template <typename Fn>
  void ForEachPiece(uint64_t offset, uint64_t length, Fn fn) const;
  // The same with writable pieces: fn(uint8_t* data, size_t len) -> bool;
  // stops early and returns false when fn does.
  template <typename Fn>
  bool ForEachWritablePiece(uint64_t offset, uint64_t length, Fn fn);

 private:
  friend class HostArena;
  PageRun(HostArena* arena, std::vector<uint32_t> pages, uint64_t size)
      : arena_(arena), pages_(std::move(pages)), size_(size) {}
  void Release();

  HostArena* arena_ = nullptr;  // not owned; outlives every run
  std::vector<uint32_t> pages_;
  uint64_t size_ = 0;
};

class HostArena {
 public:
  struct Options {
    uint64_t capacity_bytes = 1ull << 30;
    uint32_t page_bytes = 256 << 10;
    // Fault every page in at start, so no put pays for page allocation,
    // zeroing and accounting on its hot path (see docs/BENCHMARKS.md), and a
    // memfd is given 2 MiB pages where the kernel allows.
    bool prefault = true;
    // Pin the arena for GPU DMA (cudaHostRegister) once, here, where a GPU
    // is usable, so copies between arena pages and GPU memory are
    // asynchronous and run at the bus's speed; never on the data path.
    // Off by default: pinning takes time and a CUDA context.
    bool pin_for_gpu = false;
  };

  // INVALID_ARGUMENT for a page size that is not a power of two in
  // [4 KiB, 64 MiB] or a capacity below one page; RESOURCE_EXHAUSTED if the
  // mapping fails.
  static absl::StatusOr<std::unique_ptr<HostArena>> Create(const Options& options);

  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;
  // REQUIRES: every PageRun from this arena was destroyed.
  ~HostArena();

  // Pages for `bytes` bytes (at least one page), all or nothing.
  // RESOURCE_EXHAUSTED when too few pages are free.
  absl::StatusOr<PageRun> Allocate(uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  uint32_t page_bytes() const { return page_bytes_; }
  uint64_t capacity_bytes() const { return uint64_t{page_count_} * page_bytes_; }
  uint64_t used_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  uint32_t PagesFor(uint64_t bytes) const;
  // The memfd behind the region, or -1 for an anonymous mapping.
  int fd() const { return fd_; }
  // True if fd() is sealed against writable mappings, writes and resizing
  // by anyone but this arena (F_SEAL_FUTURE_WRITE: Linux 5.1 and later).
  bool sealed() const { return sealed_; }
  // Whether the region is backed by huge pages: copies out of it ran
  // 1.6-1.9x faster here with 2 MiB pages (docs/BENCHMARKS.md). A prefaulted
  // memfd says what MADV_COLLAPSE did; otherwise this reports the kernel's
  // THP setting for the mapping's kind. One line for the banner and Stats.
  const std::string& page_backing() const { return page_backing_; }
  // Whether the arena is pinned for GPU DMA, or why not. One line for the
  // banner and Stats.
  const std::string& gpu_pinning() const { return gpu_pinning_; }
  bool pinned_for_gpu() const { return pinned_ != nullptr; }

  // Where page `page` starts. REQUIRES: page < page count.
  uint8_t* PageData(uint32_t page) const { return base_ + uint64_t{page} * page_bytes_; }

 private:
  friend class PageRun;
  HostArena(uint8_t* base, int fd, bool sealed, uint32_t page_bytes, uint32_t page_count,
            std::string page_backing, std::unique_ptr<PinnedRegistration> pinned,
            std::string gpu_pinning);
  void Free(absl::Span<const uint32_t> pages) ABSL_LOCKS_EXCLUDED(mu_);

  uint8_t* const base_;
  const int fd_;
  const bool sealed_;
  const std::string page_backing_;
  std::unique_ptr<PinnedRegistration> pinned_;  // null when not pinned
  const std::string gpu_pinning_;
  const uint32_t page_bytes_;
  const uint32_t page_count_;
  mutable Mutex mu_;
  std::vector<uint32_t> free_pages_ ABSL_GUARDED_BY(mu_);
};

template <typename Fn>
void PageRun::ForEachPiece(uint64_t offset, uint64_t length, Fn fn) const {
  const uint32_t page_bytes = arena_->page_bytes();
  while (length > 0) {
    const uint64_t page_index = offset / page_bytes;
    const uint64_t in_page = offset % page_bytes;
    const uint64_t n = std::min<uint64_t>(length, page_bytes - in_page);
    fn(arena_->PageData(pages_[page_index]) + in_page, static_cast<size_t>(n));
    offset += n;
    length -= n;
  }
}

template <typename Fn>
bool PageRun::ForEachWritablePiece(uint64_t offset, uint64_t length, Fn fn) {
  bool ok = true;
  ForEachPiece(offset, length, [&](const uint8_t* data, size_t len) {
    // Our own pages: writable through this non-const run.
    if (ok) ok = fn(const_cast<uint8_t*>(data), len);
  });
  return ok;
}

}  // namespace kvcache

#endif  // KVCACHE_OFFLOAD_HOST_ARENA_H_
