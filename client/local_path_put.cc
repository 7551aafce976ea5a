// LocalPathClient's puts: by kPutStaged (one round trip a block, the copy
// into staging of each block overlapped with the daemon's commit of the one
// before) where the daemon offers it, else by put lease.
#include "client/local_path_client.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/put_header.h"
#include "common/bulk_copy.h"
#include "key/checksum.h"

namespace kvcache {

class LocalPathClient::StagedPut {
 public:
  StagedPut(LocalPathClient* client, uint64_t offset, uint64_t length)
      : client_(client), offset_(offset), length_(length) {
    request.set_staging_offset(offset);
  }
  StagedPut(StagedPut&& other) noexcept
      : request(std::move(other.request)),
        client_(std::exchange(other.client_, nullptr)),
        offset_(other.offset_),
        length_(other.length_) {}
  StagedPut& operator=(StagedPut&&) = delete;
  ~StagedPut() {
    if (client_ == nullptr || length_ == 0) return;
    MutexLock lock(&client_->staging_mu_);
    client_->staging_ranges_->Free(offset_, length_);
    client_->staging_freed_.SignalAll();
  }

  v1::LocalPutStaged request;

 private:
  LocalPathClient* client_;
  uint64_t offset_;
  uint64_t length_;
};

absl::StatusOr<std::optional<LocalPathClient::StagedPut>> LocalPathClient::StageBlock(
    const std::string& ns, const std::string& parent, const PutBlock& block, bool wait) {
  const absl::string_view bytes = block.bytes();
  uint64_t offset = 0;
  if (!bytes.empty()) {
    MutexLock lock(&staging_mu_);
    while (true) {
      absl::StatusOr<uint64_t> range = staging_ranges_->Allocate(bytes.size());
      if (range.ok()) {
        offset = *range;
        break;
      }
      if (range.status().code() != absl::StatusCode::kResourceExhausted) {
        return absl::OutOfRangeError(
            absl::StrCat("a block of ", bytes.size(), " bytes is larger than the same-host "
                         "staging space (", staging_size_, " bytes; kvstored --local_staging)"));
      }
      if (!wait) return std::optional<StagedPut>();
      // Other puts on this connection hold the rest; each gives its range
      // back once the daemon has answered.
      staging_freed_.Wait(&staging_mu_);
    }
  }
  std::optional<StagedPut> put;
  put.emplace(this, offset, bytes.size());
  // The copy and its hash in one pass: the payload is read once.
  *put->request.mutable_header() = MakePutHeader(ns, parent, block, /*with_checksum=*/false);
  ChecksumStream checksum;
  checksum.CopyAndUpdate(staging_ + offset,
                         {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  put->request.mutable_header()->set_checksum(checksum.Digest());
  return put;
}

LocalPathClient::Outcome LocalPathClient::SendStaged(const StagedPut& put,
                                                     v1::PutOutcome* outcome) {
  v1::LocalResult result;
  const Outcome call = Call(LocalMessage::kPutStaged, put.request, LocalMessage::kResult, &result);
  if (!call.status.ok()) return call;
  if (result.status_code() != 0) {
    return Outcome{StatusOf(result.status_code(), result.status_message()), false};
  }
  *outcome = result.outcome();
  return Outcome{absl::OkStatus(), false};
}

LocalPathClient::Outcome LocalPathClient::PutAllStaged(const std::string& ns,
                                                       const std::string& parent,
                                                       absl::Span<const PutBlock> blocks,
                                                       std::vector<v1::PutOutcome>* outcomes) {
  std::optional<StagedPut> next;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!next.has_value()) {
      // Holding no range now, so waiting cannot wait on itself.
      const std::string parent_i = i == 0 ? parent : blocks[i - 1].key.ToBytes();
      absl::StatusOr<std::optional<StagedPut>> staged =
          StageBlock(ns, parent_i, blocks[i], /*wait=*/true);
      if (absl::IsOutOfRange(staged.status())) {
        // Larger than any block the daemon takes (its staging holds the
        // largest): a put lease of it reserves nothing and brings back the
        // daemon's own reason.
        const Outcome leased = PutByLease(ns, parent_i, blocks.subspan(i, 1), outcomes);
        if (!leased.status.ok()) return leased;
        continue;
      }
      if (!staged.ok()) return Outcome{staged.status(), false};
      next.emplace(**std::move(staged));
    }
    const StagedPut current = *std::move(next);
    next.reset();
    Outcome sent;
    v1::PutOutcome outcome = v1::PUT_OUTCOME_UNSPECIFIED;
    if (i + 1 < blocks.size()) {
      // The daemon copies block i out of staging while this thread copies
      // block i + 1 in (another range, if one is free now): both busy.
      put_overlap_.Run(2, [&](size_t task) {
        if (task == 1) {
          sent = SendStaged(current, &outcome);
          return;
        }
        // Not staged now (no free range, or too large): the next round
        // stages it, waiting, or says why not.
        absl::StatusOr<std::optional<StagedPut>> staged =
            StageBlock(ns, blocks[i].key.ToBytes(), blocks[i + 1], /*wait=*/false);
        if (staged.ok() && staged->has_value()) next.emplace(**std::move(staged));
      });
    } else {
      sent = SendStaged(current, &outcome);
    }
    if (!sent.status.ok()) return sent;  // `next` gives its range back
    outcomes->push_back(outcome);
  }
  return Outcome{absl::OkStatus(), false};
}

Transport::Outcome LocalPathClient::Put(const std::string& ns, const BlockKey& parent,
                                        absl::Span<const PutBlock> blocks,
                                        std::vector<v1::PutOutcome>* outcomes) {
  if (put_staged_) return PutAllStaged(ns, parent.ToBytes(), blocks, outcomes);
  return PutByLease(ns, parent.ToBytes(), blocks, outcomes);
}

LocalPathClient::Outcome LocalPathClient::PutByLease(const std::string& ns,
                                                     const std::string& parent,
                                                     absl::Span<const PutBlock> blocks,
                                                     std::vector<v1::PutOutcome>* outcomes) {
  std::string previous = parent;
  for (const PutBlock& block : blocks) {
    const v1::PutBlockHeader header = MakePutHeader(ns, previous, block);
    previous = block.key.ToBytes();
    v1::LocalLease lease;
    Outcome call = Call(LocalMessage::kPutBegin, header, LocalMessage::kLease, &lease);
    if (!call.status.ok()) return call;
    if (lease.status_code() != 0) {
      return Outcome{StatusOf(lease.status_code(), lease.status_message()), false};
    }
    if (lease.lease_id() == 0) {  // not stored, and no bytes to send
      outcomes->push_back(lease.outcome());
      continue;
    }
    if (!ExtentsFit(lease.staging(), staging_size_, block.bytes().size())) {
      return Outcome{absl::InternalError("local lease does not match the block"), true};
    }
    const char* from = block.bytes().data();
    for (const v1::ArenaExtent& e : lease.staging()) {
      BulkCopy(staging_ + e.offset(), from, e.length());
      from += e.length();
    }
    v1::LocalRelease commit;
    commit.set_lease_id(lease.lease_id());
    v1::LocalResult result;
    call = Call(LocalMessage::kPutCommit, commit, LocalMessage::kResult, &result);
    if (!call.status.ok()) return call;
    if (result.status_code() != 0) {
      return Outcome{StatusOf(result.status_code(), result.status_message()), false};
    }
    outcomes->push_back(result.outcome());
  }
  return Outcome{absl::OkStatus(), false};
}

}  // namespace kvcache
