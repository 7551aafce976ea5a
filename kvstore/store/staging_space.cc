#include "kvstore/store/staging_space.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

constexpr uint64_t kAlign = 4096;

uint64_t RoundUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

StagingSpace::Range::Range(Range&& other) noexcept
    : space_(other.space_), offset_(other.offset_), length_(other.length_) {
  other.space_ = nullptr;
}

StagingSpace::Range& StagingSpace::Range::operator=(Range&& other) noexcept {
  if (this != &other) {
    Release();
    space_ = other.space_;
    offset_ = other.offset_;
    length_ = other.length_;
    other.space_ = nullptr;
  }
  return *this;
}

StagingSpace::Range::~Range() { Release(); }

void StagingSpace::Range::Release() {
  if (space_ != nullptr) space_->Free(offset_, length_);
  space_ = nullptr;
}

absl::Span<const uint8_t> StagingSpace::Range::bytes() const {
  if (space_ == nullptr) return {};
  return {space_->base_ + offset_, static_cast<size_t>(length_)};
}

absl::StatusOr<std::unique_ptr<StagingSpace>> StagingSpace::Create(uint64_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("staging space of 0 bytes");
  const uint64_t size = RoundUp(bytes);
  const int fd = memfd_create("kvcache-local-staging", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void* base = MAP_FAILED;
  if (fd >= 0 && ftruncate(fd, static_cast<off_t>(size)) == 0 &&
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
    base = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  }
  if (base == MAP_FAILED) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot make a ", size, "-byte staging memfd: ", std::strerror(err)));
  }
  return std::unique_ptr<StagingSpace>(new StagingSpace(fd, static_cast<uint8_t*>(base), size));
}

StagingSpace::StagingSpace(int fd, uint8_t* base, uint64_t size)
    : fd_(fd), base_(base), size_(size), ranges_(size, kAlign) {}

StagingSpace::~StagingSpace() {
  munmap(base_, size_);
  close(fd_);
}

absl::StatusOr<absl::Span<const uint8_t>> StagingSpace::Bytes(uint64_t offset,
                                                               uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::InvalidArgumentError(absl::StrCat("staging range [", offset, ", +", length,
                                                   ") lies outside the ", size_,
                                                   "-byte staging space"));
  }
  return absl::Span<const uint8_t>(base_ + offset, static_cast<size_t>(length));
}

absl::StatusOr<StagingSpace::Range> StagingSpace::Reserve(uint64_t length) {
  if (length == 0 || RoundUp(length) > size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot stage ", length, " bytes in a ", size_, "-byte staging space"));
  }
  absl::StatusOr<uint64_t> offset = ranges_.Allocate(length);
  if (!offset.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("staging space full: ",
                                                     ranges_.used_bytes(), " of ", size_,
                                                     " bytes reserved by unfinished puts"));
  }
  return Range(this, *offset, length);
}

void StagingSpace::Free(uint64_t offset, uint64_t length) { ranges_.Free(offset, length); }

}  // namespace kvcache
