#include "key/checksum.h"

#include <algorithm>

#include "common/bulk_copy.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace kvcache {

#if defined(__x86_64__)
// checksum_avx2.cc: the same functions built for AVX2.
uint64_t Xxh3Avx2(const void* data, size_t size);
void* Xxh3Avx2NewState();
void Xxh3Avx2Update(void* state, const void* data, size_t size);
void Xxh3Avx2CopyUpdate(void* state, void* dst, const void* src, size_t size, bool streaming);
uint64_t Xxh3Avx2Digest(const void* state);
void Xxh3Avx2FreeState(void* state);

static bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#else
static bool HasAvx2() { return false; }
#endif

// Either an AVX2 state (opaque, from checksum_avx2.cc) or a generic one.
struct ChecksumStream::State {
  void* avx2 = nullptr;
  XXH3_state_t generic;
};

uint64_t BlockChecksum(absl::Span<const uint8_t> data) {
#if defined(__x86_64__)
  if (HasAvx2()) return Xxh3Avx2(data.data(), data.size());
#endif
  return XXH3_64bits(data.data(), data.size());
}

ChecksumStream::ChecksumStream() : state_(std::make_unique<State>()) {
#if defined(__x86_64__)
  if (HasAvx2()) {
    state_->avx2 = Xxh3Avx2NewState();
    return;
  }
#endif
  XXH3_64bits_reset(&state_->generic);
}

ChecksumStream::~ChecksumStream() {
#if defined(__x86_64__)
  if (state_ != nullptr && state_->avx2 != nullptr) Xxh3Avx2FreeState(state_->avx2);
#endif
}

ChecksumStream::ChecksumStream(ChecksumStream&&) noexcept = default;
ChecksumStream& ChecksumStream::operator=(ChecksumStream&&) noexcept = default;

void ChecksumStream::CopyAndUpdate(uint8_t* dst, absl::Span<const uint8_t> src) {
#if defined(__x86_64__)
  if (state_->avx2 != nullptr) {
    Xxh3Avx2CopyUpdate(state_->avx2, dst, src.data(), src.size(), /*streaming=*/false);
    return;
  }
#endif
  constexpr size_t kPiece = 32 << 10;
  for (size_t done = 0; done < src.size(); done += kPiece) {
    const size_t n = std::min(kPiece, src.size() - done);
    BulkCopy(dst + done, src.data() + done, n);
    Update({dst + done, n});
  }
}

void ChecksumStream::CopyAndUpdateStreaming(uint8_t* dst, absl::Span<const uint8_t> src) {
#if defined(__x86_64__)
  if (state_->avx2 != nullptr) {
    Xxh3Avx2CopyUpdate(state_->avx2, dst, src.data(), src.size(), /*streaming=*/true);
    return;
  }
#endif
  // 16 KiB measured fastest (4 KiB: 6.5 GB/s, 16 KiB: 8.5, 32 KiB: 7.7),
  // small enough to stay in L1/L2 between its copy, hash and stream.
  constexpr size_t kPiece = 16 << 10;
  alignas(64) uint8_t bounce[kPiece];
  for (size_t done = 0; done < src.size(); done += kPiece) {
    const size_t n = std::min(kPiece, src.size() - done);
    BulkCopy(bounce, src.data() + done, n);
    Update({bounce, n});
    BulkCopyStreaming(dst + done, bounce, n);
  }
}

void ChecksumStream::Update(absl::Span<const uint8_t> data) {
#if defined(__x86_64__)
  if (state_->avx2 != nullptr) {
    Xxh3Avx2Update(state_->avx2, data.data(), data.size());
    return;
  }
#endif
  XXH3_64bits_update(&state_->generic, data.data(), data.size());
}

uint64_t ChecksumStream::Digest() const {
#if defined(__x86_64__)
  if (state_->avx2 != nullptr) return Xxh3Avx2Digest(state_->avx2);
#endif
  return XXH3_64bits_digest(&state_->generic);
}

}  // namespace kvcache
