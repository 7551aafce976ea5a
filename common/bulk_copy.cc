#include "common/bulk_copy.h"

#include <cstring>

namespace kvcache {

#if defined(__x86_64__)
// bulk_copy_avx2.cc: the loops, built for AVX2.
void BulkCopyAvx2(void* dst, const void* src, size_t n);
void BulkCopyStreamingAvx2(void* dst, const void* src, size_t n);

namespace {
bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
}  // namespace

void BulkCopy(void* dst, const void* src, size_t n) {
  if (HasAvx2()) {
    BulkCopyAvx2(dst, src, n);
  } else {
    std::memcpy(dst, src, n);
  }
}

void BulkCopyStreaming(void* dst, const void* src, size_t n) {
  if (HasAvx2()) {
    BulkCopyStreamingAvx2(dst, src, n);
  } else {
    std::memcpy(dst, src, n);
  }
}
#else
void BulkCopy(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void BulkCopyStreaming(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
#endif

}  // namespace kvcache
