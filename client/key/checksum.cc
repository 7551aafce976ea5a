#include "client/key/checksum.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace kvcache {

struct ChecksumStream::State {
  XXH3_state_t xxh;
};

uint64_t BlockChecksum(absl::Span<const uint8_t> data) {
  return XXH3_64bits(data.data(), data.size());
}

ChecksumStream::ChecksumStream() : state_(std::make_unique<State>()) {
  XXH3_64bits_reset(&state_->xxh);
}
ChecksumStream::~ChecksumStream() = default;
ChecksumStream::ChecksumStream(ChecksumStream&&) noexcept = default;
ChecksumStream& ChecksumStream::operator=(ChecksumStream&&) noexcept = default;

void ChecksumStream::Update(absl::Span<const uint8_t> data) {
  XXH3_64bits_update(&state_->xxh, data.data(), data.size());
}

uint64_t ChecksumStream::Digest() const { return XXH3_64bits_digest(&state_->xxh); }

}  // namespace kvcache
