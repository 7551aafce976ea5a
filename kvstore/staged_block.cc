#include "kvstore/staged_block.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

StagedBlock::StagedBlock(std::optional<NamespaceId> ns, BlockMeta meta, PageRun pages,
                         std::optional<BlockPin> parent_pin, std::atomic<uint64_t>* staged_bytes)
    : ns_(ns),
      meta_(std::move(meta)),
      pages_(std::move(pages)),
      parent_pin_(std::move(parent_pin)),
      staged_bytes_(staged_bytes) {
  staged_bytes_->fetch_add(meta_.size, std::memory_order_relaxed);
}

StagedBlock::~StagedBlock() { staged_bytes_->fetch_sub(meta_.size, std::memory_order_relaxed); }

absl::Status StagedBlock::Append(absl::Span<const uint8_t> data) {
  if (data.size() > meta_.size - received_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", meta_.key.ToHex(), ": ", received_ + data.size(),
        " bytes sent, more than its declared size ", meta_.size));
  }
  // Hashing the copy: what is verified is what is stored, even if the
  // source changes meanwhile (a local client's staging memory).
  const uint8_t* from = data.data();
  pages_.ForEachWritablePiece(received_, data.size(), [&](uint8_t* dst, size_t len) {
    checksum_.CopyAndUpdate(dst, {from, len});
    from += len;
    return true;
  });
  received_ += data.size();
  return absl::OkStatus();
}

absl::Status StagedBlock::ReceiveInto(uint64_t n,
                                      absl::FunctionRef<bool(uint8_t*, size_t)> read) {
  if (n > meta_.size - received_) {
    return absl::InvalidArgumentError(absl::StrCat("block ", meta_.key.ToHex(), ": ",
                                                   received_ + n, " bytes sent, more than its "
                                                   "declared size ", meta_.size));
  }
  const bool ok = pages_.ForEachWritablePiece(received_, n, [&](uint8_t* dst, size_t len) {
    if (!read(dst, len)) return false;
    checksum_.Update({dst, len});
    received_ += len;
    return true;
  });
  if (!ok) return absl::UnavailableError("connection lost while receiving a block");
  return absl::OkStatus();
}

absl::Status StagedBlock::Verify() const {
  if (!complete()) {
    return absl::InvalidArgumentError(absl::StrCat("block ", meta_.key.ToHex(), " ended after ",
                                                   received_, " of ", meta_.size, " bytes"));
  }
  const uint64_t actual = checksum_.Digest();
  if (actual != meta_.checksum) {
    return absl::DataLossError(absl::StrCat("block ", meta_.key.ToHex(),
                                            ": checksum mismatch (client said ", meta_.checksum,
                                            ", bytes hash to ", actual, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<InsertOutcome> StagedBlock::Commit(BlockIndex& index) {
  if (absl::Status s = Verify(); !s.ok()) return s;
  if (!ns_.has_value()) return absl::InternalError("staged block committed with no namespace");
  InsertOutcome outcome = index.Insert(*ns_, meta_, std::move(pages_));
  parent_pin_.reset();
  return outcome;
}

}  // namespace kvcache
