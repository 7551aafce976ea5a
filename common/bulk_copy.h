// Copies of large buffers (whole KV blocks) between the shared arena and a
// caller's memory.
//
// Why not memcpy: on the AMD EPYC machines we measure on, glibc 2.36 copies
// 4 KiB..1 MiB pieces with `rep movsb`, which ran at 7 GB/s from memory the
// CPU had not touched lately, while a plain AVX2 load/store loop over the same
// bytes ran at 17.5 GB/s (docs/BENCHMARKS.md, same-host path).
#ifndef KVCACHE_COMMON_BULK_COPY_H_
#define KVCACHE_COMMON_BULK_COPY_H_

#include <cstddef>

namespace kvcache {

// Copies n bytes from src to dst; the ranges must not overlap. Uses 32-byte
// vector loads and stores where the CPU has AVX2 (checked once), memcpy
// otherwise. Safe from any thread.
void BulkCopy(void* dst, const void* src, size_t n);

// The same, but the stores bypass the CPU caches (non-temporal), so a copy
// into a destination that is not in cache does not first read it in: 10-20%
// faster for multi-MiB blocks here (docs/BENCHMARKS.md), and it leaves the
// caches to the caller's other data. For destinations a consumer reads from
// memory (a GPU's DMA, a later pass), not for ones read back at once.
void BulkCopyStreaming(void* dst, const void* src, size_t n);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_BULK_COPY_H_
