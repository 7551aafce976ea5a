// Built with -mavx2 and called only on CPUs that have it (bulk_copy.cc).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace kvcache {
namespace {

// How far ahead of the loads the loops ask for source lines. The hardware
// prefetcher stops at each 4 KiB page and runs only a few lines ahead,
// which on the VMs we measure leaves a copy from memory waiting on DRAM
// latency; asking 8 KiB ahead made a 2 MiB copy from memory 1.15-1.2x as
// fast (2 KiB ahead: 1.03x, 4 KiB: 1.1x, 16 KiB: as 8 KiB; docs/BENCHMARKS.md).
constexpr size_t kPrefetchAhead = 8 << 10;

// Asks for the two cache lines of source at `s + kPrefetchAhead`.
inline void PrefetchAhead(const uint8_t* s) {
  _mm_prefetch(reinterpret_cast<const char*>(s + kPrefetchAhead), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(s + kPrefetchAhead + 64), _MM_HINT_T0);
}

}  // namespace

void BulkCopyAvx2(void* dst, const void* src, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  size_t i = 0;
  // Four independent 32-byte loads in flight, then four stores; the source
  // is asked for ahead while the lines asked for lie inside it.
  for (; i + 128 <= n; i += 128) {
    if (i + kPrefetchAhead + 128 <= n) PrefetchAhead(s + i);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 64));
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 96));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i + 32), b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i + 64), c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i + 96), e);
  }
  std::memcpy(d + i, s + i, n - i);
}

void BulkCopyStreamingAvx2(void* dst, const void* src, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  // Non-temporal stores need 32-byte alignment: copy the head plainly.
  const size_t head = std::min(n, (32 - reinterpret_cast<uintptr_t>(d) % 32) % 32);
  std::memcpy(d, s, head);
  size_t i = head;
  for (; i + 128 <= n; i += 128) {
    if (i + kPrefetchAhead + 128 <= n) PrefetchAhead(s + i);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 64));
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 96));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i + 32), b);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i + 64), c);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i + 96), e);
  }
  _mm_sfence();  // the streamed stores are ordered before whatever follows
  std::memcpy(d + i, s + i, n - i);
}

}  // namespace kvcache
