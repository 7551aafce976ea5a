#include "common/bulk_copy.h"

#include <cstring>

namespace kvcache {

#if defined(__x86_64__)
// bulk_copy_avx2.cc: the loop, built for AVX2.
void BulkCopyAvx2(void* dst, const void* src, size_t n);

void BulkCopy(void* dst, const void* src, size_t n) {
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) {
    BulkCopyAvx2(dst, src, n);
  } else {
    std::memcpy(dst, src, n);
  }
}
#else
void BulkCopy(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
#endif

}  // namespace kvcache
