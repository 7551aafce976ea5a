#include "kvstore/store/staged_block.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvcache {

StagedBlock::StagedBlock(std::optional<NamespaceId> ns, BlockMeta meta, BlockStore& store,
                         ConnectionShare* share, std::optional<BlockPin> parent_pin)
    : ns_(ns),
      meta_(std::move(meta)),
      store_(store),
      share_(share),
      parent_pin_(std::move(parent_pin)) {}

StagedBlock::~StagedBlock() { Uncount(pages_.size()); }

void StagedBlock::Uncount(uint64_t bytes) {
  store_.staged_bytes().fetch_sub(bytes, std::memory_order_relaxed);
  if (share_ != nullptr) share_->Release(bytes);
}

absl::Status StagedBlock::CoverUpTo(uint64_t end) {
  const uint64_t covered = pages_.size();
  if (end <= covered) return absl::OkStatus();
  // Whole pages, so the run stays a list of full pages until the last one.
  const uint64_t page = store_.arena().page_bytes();
  const uint64_t want = std::min(meta_.size, (end + page - 1) / page * page) - covered;
  if (share_ != nullptr) {
    if (absl::Status s = share_->Charge(want, "staged"); !s.ok()) return s;
  }
  absl::StatusOr<PageRun> more = store_.AllocateEvicting(want);
  if (!more.ok()) {
    if (share_ != nullptr) share_->Release(want);
    return absl::ResourceExhaustedError(absl::StrCat("block ", meta_.key.ToHex(), ": no room for ",
                                                     want, " more bytes: ",
                                                     more.status().message()));
  }
  pages_.Append(*std::move(more));
  store_.staged_bytes().fetch_add(want, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status StagedBlock::Append(absl::Span<const uint8_t> data) {
  if (data.size() > meta_.size - received_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", meta_.key.ToHex(), ": ", received_ + data.size(),
        " bytes sent, more than its declared size ", meta_.size));
  }
  if (data.empty()) return absl::OkStatus();  // a header alone: no pages to touch
  if (absl::Status s = CoverUpTo(received_ + data.size()); !s.ok()) return s;
  // Hashing the copy: what is verified is what is stored, even if the
  // source changes meanwhile (a local client's staging memory).
  const uint8_t* from = data.data();
  pages_.ForEachWritablePiece(received_, data.size(), [&](uint8_t* dst, size_t len) {
    checksum_.CopyAndUpdateStreaming(dst, {from, len});
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
  const uint64_t page = store_.arena().page_bytes();
  const uint64_t end = received_ + n;
  while (received_ < end) {
    // One page at a time: a sender that stalls holds at most one page
    // beyond what it sent.
    const uint64_t step_end = std::min(end, (received_ / page + 1) * page);
    if (absl::Status s = CoverUpTo(step_end); !s.ok()) return s;
    const bool ok =
        pages_.ForEachWritablePiece(received_, step_end - received_, [&](uint8_t* dst, size_t len) {
          if (!read(dst, len)) return false;
          checksum_.Update({dst, len});
          received_ += len;
          return true;
        });
    if (!ok) return absl::UnavailableError("connection lost while receiving a block");
  }
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
  Uncount(pages_.size());
  InsertOutcome outcome = index.Insert(*ns_, meta_, std::move(pages_));
  parent_pin_.reset();
  return outcome;
}

}  // namespace kvcache
