#include "offload/host_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/bulk_copy.h"
#include "common/huge_pages.h"
#include "common/memfd_seal.h"

namespace kvcache {
namespace {

// The kernel's transparent huge page mode for shared memory (a memfd) or
// for anonymous memory: the bracketed word in its sysfs file.
std::string ThpMode(bool shared) {
  std::ifstream in(shared ? "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
                          : "/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(in, line);
  const size_t open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "unknown";
  return line.substr(open + 1, close - open - 1);
}

std::string PageBacking(bool shared) {
  const std::string mode = ThpMode(shared);
  const char* knob = shared ? "shmem_enabled" : "enabled";
  if (mode == "always" || mode == "within_size" || mode == "advise" || mode == "force") {
    return absl::StrCat("backed by 2 MiB pages (transparent_hugepage/", knob, ": ", mode, ")");
  }
  return absl::StrCat("backed by 4 KiB pages (transparent_hugepage/", knob, ": ", mode,
                      "; --prefault would collapse it into 2 MiB pages)");
}

}  // namespace

PageRun::PageRun(PageRun&& other) noexcept
    : arena_(other.arena_), pages_(std::move(other.pages_)), size_(other.size_) {
  other.arena_ = nullptr;
  other.pages_.clear();
  other.size_ = 0;
}

PageRun& PageRun::operator=(PageRun&& other) noexcept {
  if (this != &other) {
    Release();
    arena_ = other.arena_;
    pages_ = std::move(other.pages_);
    size_ = other.size_;
    other.arena_ = nullptr;
    other.pages_.clear();
    other.size_ = 0;
  }
  return *this;
}

PageRun::~PageRun() { Release(); }

void PageRun::Release() {
  if (arena_ != nullptr && !pages_.empty()) arena_->Free(pages_);
  arena_ = nullptr;
  pages_.clear();
  size_ = 0;
}

void PageRun::Append(PageRun&& more) {
  if (more.pages_.empty()) return;
  if (pages_.empty()) {
    *this = std::move(more);
    return;
  }
  assert(arena_ == more.arena_);
  assert(size_ == uint64_t{arena_->page_bytes()} * pages_.size());
  pages_.insert(pages_.end(), more.pages_.begin(), more.pages_.end());
  size_ += more.size_;
  more.arena_ = nullptr;
  more.pages_.clear();
  more.size_ = 0;
}

void PageRun::Write(uint64_t offset, absl::Span<const uint8_t> src) {
  const uint8_t* from = src.data();
  ForEachPiece(offset, src.size(), [&from](const uint8_t* piece, size_t n) {
    BulkCopy(const_cast<uint8_t*>(piece), from, n);
    from += n;
  });
}

void PageRun::Read(uint64_t offset, absl::Span<uint8_t> dst) const {
  uint8_t* to = dst.data();
  ForEachPiece(offset, dst.size(), [&to](const uint8_t* piece, size_t n) {
    BulkCopy(to, piece, n);
    to += n;
  });
}

absl::StatusOr<std::unique_ptr<HostArena>> HostArena::Create(const Options& options) {
  const uint64_t page = options.page_bytes;
  if (page < 4096 || page > (64u << 20) || (page & (page - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size ", page, " must be a power of two in [4 KiB, 64 MiB]"));
  }
  const uint64_t pages = options.capacity_bytes / page;
  if (pages == 0 || pages > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("host capacity ", options.capacity_bytes,
                                                   " must hold 1 to 2^32-1 pages of ", page));
  }
  const uint64_t bytes = pages * page;
  int fd = memfd_create("kvcache-host-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    fd = -1;
  }
  void* base = fd >= 0 ? MapSharedAligned(fd, bytes, PROT_READ | PROT_WRITE)
                       : mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("mapping a ", bytes, "-byte host arena failed: ", std::strerror(err)));
  }
  // Huge pages, best effort: fewer TLB misses on copies. A prefaulted memfd
  // gets them whatever the kernel's shmem setting; otherwise the kernel's
  // settings decide.
  madvise(base, bytes, MADV_HUGEPAGE);
  std::string backing = PageBacking(fd >= 0);
  if (options.prefault && fd >= 0) {
    backing = PopulateWithHugePages(static_cast<uint8_t*>(base), bytes).Describe();
  } else if (options.prefault) {
    PopulateForWrite(static_cast<uint8_t*>(base), bytes);
  }
  const bool sealed = fd >= 0 && SealAgainstOtherWriters(fd);
  std::unique_ptr<PinnedRegistration> pinned;
  std::string pinning = "not pinned for GPU DMA (not asked)";
  if (options.pin_for_gpu) {
    absl::StatusOr<std::unique_ptr<PinnedRegistration>> registered =
        PinnedRegistration::Create(base, bytes);
    if (registered.ok()) {
      pinned = std::move(*registered);
      pinning = "pinned for GPU DMA";
    } else {
      pinning = absl::StrCat("not pinned for GPU DMA (", registered.status().message(), ")");
    }
  }
  return std::unique_ptr<HostArena>(new HostArena(
      static_cast<uint8_t*>(base), fd, sealed, static_cast<uint32_t>(page),
      static_cast<uint32_t>(pages), std::move(backing), std::move(pinned), std::move(pinning)));
}

HostArena::HostArena(uint8_t* base, int fd, bool sealed, uint32_t page_bytes, uint32_t page_count,
                     std::string page_backing, std::unique_ptr<PinnedRegistration> pinned,
                     std::string gpu_pinning)
    : base_(base),
      fd_(fd),
      sealed_(sealed),
      page_backing_(std::move(page_backing)),
      pinned_(std::move(pinned)),
      gpu_pinning_(std::move(gpu_pinning)),
      page_bytes_(page_bytes),
      page_count_(page_count) {
  free_pages_.resize(page_count);
  // Hand out low pages first: they are the ones already faulted in.
  for (uint32_t i = 0; i < page_count; ++i) free_pages_[i] = page_count - 1 - i;
}

HostArena::~HostArena() {
  pinned_.reset();  // unpin before unmapping
  munmap(base_, capacity_bytes());
  if (fd_ >= 0) close(fd_);
}

uint32_t HostArena::PagesFor(uint64_t bytes) const {
  return static_cast<uint32_t>(std::max<uint64_t>(1, (bytes + page_bytes_ - 1) / page_bytes_));
}

absl::StatusOr<PageRun> HostArena::Allocate(uint64_t bytes) {
  if (bytes > capacity_bytes()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(bytes, " bytes exceed the host arena (", capacity_bytes(), " bytes)"));
  }
  const uint32_t n = PagesFor(bytes);
  std::vector<uint32_t> pages;
  {
    MutexLock lock(&mu_);
    if (free_pages_.size() < n) {
      return absl::ResourceExhaustedError(
          absl::StrCat("host arena has ", free_pages_.size(), " free pages, ", n, " needed"));
    }
    pages.assign(free_pages_.end() - n, free_pages_.end());
    free_pages_.resize(free_pages_.size() - n);
  }
  return PageRun(this, std::move(pages), bytes);
}

void HostArena::Free(absl::Span<const uint32_t> pages) {
  MutexLock lock(&mu_);
  free_pages_.insert(free_pages_.end(), pages.begin(), pages.end());
}

uint64_t HostArena::used_bytes() const {
  MutexLock lock(&mu_);
  return uint64_t{page_count_ - static_cast<uint32_t>(free_pages_.size())} * page_bytes_;
}

}  // namespace kvcache
