// The block checksum of the wire contract: XXH3-64 with seed 0 over the whole
// payload. Fast enough (tens of GB/s) to verify every put in full.
//
// Thread safety: BlockChecksum is stateless; a ChecksumStream is used by one
// thread at a time.
#ifndef KVCACHE_KEY_CHECKSUM_H_
#define KVCACHE_KEY_CHECKSUM_H_

#include <cstdint>
#include <memory>

#include "absl/types/span.h"

namespace kvcache {

uint64_t BlockChecksum(absl::Span<const uint8_t> data);

// The same checksum, computed over data that arrives in pieces. Uses AVX2
// where the CPU has it, like BlockChecksum.
class ChecksumStream {
 public:
  ChecksumStream();
  ~ChecksumStream();
  ChecksumStream(ChecksumStream&&) noexcept;
  ChecksumStream& operator=(ChecksumStream&&) noexcept;

  void Update(absl::Span<const uint8_t> data);
  // Copies src to dst (src.size() bytes; no overlap) and hashes the copy, in
  // L1-sized pieces, so the hash reads from L1 and what is hashed is exactly
  // what was stored, even if src changes meanwhile.
  void CopyAndUpdate(uint8_t* dst, absl::Span<const uint8_t> src);
  // The same for a destination that is not in cache and not read back at
  // once (arena pages a put fills): each 16 KiB piece is copied to a bounce
  // buffer in L1, hashed there, and streamed to dst with non-temporal
  // stores, so dst is never read in first. 1.6x CopyAndUpdate's speed into
  // cold memory here, as fast as a plain memcpy (docs/BENCHMARKS.md).
  void CopyAndUpdateStreaming(uint8_t* dst, absl::Span<const uint8_t> src);
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kvcache

#endif  // KVCACHE_KEY_CHECKSUM_H_
