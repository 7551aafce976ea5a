#include "client/fetch_receiver.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

absl::StatusOr<uint8_t*> FetchReceiver::Begin(const FetchChunkHeader& h) {
  const size_t next = progress_->completed;
  if (next >= targets_.size() || h.item_index != next) {
    return absl::InternalError(
        absl::StrCat("fetch reply for item ", h.item_index, " out of order"));
  }
  const FetchTarget& t = targets_[next];
  if (h.offset != t.offset + received_ || h.data_length > t.dest.size() - received_) {
    return absl::InternalError("fetch reply with a range that was not asked for");
  }
  if (received_ == 0 && verify_ && t.offset == 0 && t.dest.size() == h.block_size) {
    checksum_.emplace();
  }
  piece_ = h;
  return t.dest.data() + received_;
}

absl::Status FetchReceiver::End() {
  const FetchTarget& t = targets_[progress_->completed];
  received_ += piece_.data_length;
  if (received_ < t.dest.size()) return absl::OkStatus();
  received_ = 0;
  if (checksum_.has_value()) {
    const uint64_t digest = checksum_->Digest();
    checksum_.reset();
    if (digest != piece_.block_checksum) {
      return absl::DataLossError(absl::StrCat("block ", t.key.ToHex(), " failed its checksum"));
    }
  }
  if (progress_->tiers != nullptr) progress_->tiers->push_back(static_cast<v1::Tier>(piece_.tier));
  ++progress_->completed;
  return absl::OkStatus();
}

}  // namespace kvcache
