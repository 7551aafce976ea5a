// The one place a fetch reply is checked, whichever path carries it: pieces
// come for the targets in order, each at the byte range asked for and no
// further, and a whole block's bytes hash to the checksum the daemon sent.
// The transport reads or copies the bytes; this says where they go.
//
//   FetchReceiver receiver(targets, verify, &progress);
//   for each reply piece h:
//     absl::StatusOr<uint8_t*> to = receiver.Begin(h);   // INTERNAL: not asked for
//     ... write h.data_length bytes at *to, each hashed with receiver.checksum()
//     absl::Status done = receiver.End();                // DATA_LOSS: bad block
//
// Not thread-safe: one receiver per fetch attempt.
#ifndef KVCACHE_CLIENT_FETCH_RECEIVER_H_
#define KVCACHE_CLIENT_FETCH_RECEIVER_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/requests.h"
#include "client/transport.h"
#include "key/checksum.h"
#include "proto/fetch_chunk_codec.h"

namespace kvcache {

class FetchReceiver {
 public:
  // `targets` and `progress` are not owned and must outlive this. With
  // `verify`, each whole block (a target that asked for all of its block) is
  // hashed as it arrives and checked at its end.
  FetchReceiver(absl::Span<const FetchTarget> targets, bool verify,
                Transport::FetchProgress* progress)
      : targets_(targets), verify_(verify), progress_(progress) {}

  // The next reply piece, described by `h`: h.data_length bytes at block
  // offset h.offset of item h.item_index. Returns where they go. INTERNAL if
  // the piece is for another item than the next unfinished one, or for
  // bytes that were not asked for or already came.
  absl::StatusOr<uint8_t*> Begin(const FetchChunkHeader& h);

  // While a whole block is being verified, the hash its bytes go through
  // (Update, or CopyAndUpdate to write and hash at once); null otherwise.
  ChecksumStream* checksum() { return checksum_.has_value() ? &*checksum_ : nullptr; }

  // The piece Begin described is written (and hashed). If that finishes its
  // target, checks the hash (DATA_LOSS if it differs) and counts the
  // target, with its tier, in the progress.
  absl::Status End();

  // Whether a target is partly written (a reply that stops here is cut).
  bool mid_target() const { return received_ > 0; }

 private:
  const absl::Span<const FetchTarget> targets_;
  const bool verify_;
  Transport::FetchProgress* const progress_;
  FetchChunkHeader piece_;   // the one Begin accepted
  uint64_t received_ = 0;    // bytes of the current target so far
  std::optional<ChecksumStream> checksum_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_FETCH_RECEIVER_H_
