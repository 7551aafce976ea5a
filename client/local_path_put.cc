// LocalPathClient's puts: by kPutStaged (one round trip a block; no copy
// into staging for a block in a put buffer) where the daemon offers it,
// else by put lease.
#include "client/local_path_client.h"

#include <cstdint>
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
    --client_->staged_ranges_held_;
    client_->staging_freed_.SignalAll();
  }

  v1::LocalPutStaged request;

 private:
  LocalPathClient* client_;
  uint64_t offset_;
  uint64_t length_;
};

absl::StatusOr<LocalPathClient::StagedPut> LocalPathClient::StageBlock(const std::string& ns,
                                                                       const std::string& parent,
                                                                       const PutBlock& block) {
  const absl::string_view bytes = block.bytes();
  const uintptr_t at = reinterpret_cast<uintptr_t>(bytes.data());
  const uintptr_t base = reinterpret_cast<uintptr_t>(staging_);
  if (!bytes.empty() && at >= base && bytes.size() <= staging_size_ &&
      at - base <= staging_size_ - bytes.size()) {
    // In a put buffer: the daemon reads it where it lies.
    in_place_puts_.fetch_add(1, std::memory_order_relaxed);
    StagedPut put(this, at - base, /*length=*/0);
    *put.request.mutable_header() = MakePutHeader(ns, parent, block, /*with_checksum=*/true);
    return put;
  }
  if (bytes.size() > staging_size_) {
    return absl::OutOfRangeError(
        absl::StrCat("a block of ", bytes.size(), " bytes is larger than the same-host "
                     "staging space (", staging_size_, " bytes; kvstored --local_staging)"));
  }
  uint64_t offset = 0;
  if (!bytes.empty()) {
    MutexLock lock(&staging_mu_);
    while (true) {
      absl::StatusOr<uint64_t> range = staging_ranges_->Allocate(bytes.size());
      if (range.ok()) {
        offset = *range;
        ++staged_ranges_held_;
        break;
      }
      if (staged_ranges_held_ == 0) {
        // Only put buffers hold ranges, and they stay: waiting would wait
        // forever.
        return absl::ResourceExhaustedError(absl::StrCat(
            "a block of ", bytes.size(), " bytes does not fit in the staging space beside the ",
            put_buffer_bytes_, " bytes put buffers hold (", staging_size_, " in all)"));
      }
      // Other puts on this connection hold the rest; each gives its range
      // back once the daemon has answered.
      staging_freed_.Wait(&staging_mu_);
    }
  }
  StagedPut put(this, offset, bytes.size());
  // The copy and its hash in one pass: the payload is read once.
  *put.request.mutable_header() = MakePutHeader(ns, parent, block, /*with_checksum=*/false);
  ChecksumStream checksum;
  checksum.CopyAndUpdate(staging_ + offset,
                         {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  put.request.mutable_header()->set_checksum(checksum.Digest());
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
  // One block at a time, each staged and committed on this CPU: the daemon
  // copies it where this thread's caches hold it. Staging block i + 1 while
  // the daemon committed block i on the other CPU ran 0.75-0.8x as fast
  // (docs/BENCHMARKS.md, "Same-host Put").
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string parent_i = i == 0 ? parent : blocks[i - 1].key.ToBytes();
    absl::StatusOr<StagedPut> staged = StageBlock(ns, parent_i, blocks[i]);
    if (absl::IsOutOfRange(staged.status())) {
      // Larger than any block the daemon takes (its staging holds the
      // largest): a put lease of it reserves nothing and brings back the
      // daemon's own reason.
      const Outcome leased = PutByLease(ns, parent_i, blocks.subspan(i, 1), outcomes);
      if (!leased.status.ok()) return leased;
      continue;
    }
    if (absl::IsResourceExhausted(staged.status())) {
      // It would fit only where put buffers are: the next path sends the
      // rest.
      return Outcome{absl::OkStatus(), false, /*partial=*/true};
    }
    if (!staged.ok()) return Outcome{staged.status(), false};
    v1::PutOutcome outcome = v1::PUT_OUTCOME_UNSPECIFIED;
    const Outcome sent = SendStaged(*staged, &outcome);
    if (!sent.status.ok()) return sent;
    outcomes->push_back(outcome);
  }
  return Outcome{absl::OkStatus(), false};
}

absl::StatusOr<uint8_t*> LocalPathClient::ReserveStaging(size_t bytes) {
  if (!put_staged_) {
    return absl::FailedPreconditionError("the daemon takes no puts from its staging space");
  }
  if (bytes == 0) return absl::InvalidArgumentError("a put buffer of 0 bytes");
  MutexLock lock(&staging_mu_);
  if (put_buffer_bytes_ + bytes > staging_size_ / 2) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "put buffers may hold half of the ", staging_size_, "-byte staging space (",
        put_buffer_bytes_, " bytes held, ", bytes, " asked for; kvstored --local_staging)"));
  }
  absl::StatusOr<uint64_t> offset = staging_ranges_->Allocate(bytes);
  if (!offset.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no free ", bytes, "-byte range in the staging space now"));
  }
  put_buffer_bytes_ += bytes;
  return staging_ + *offset;
}

void LocalPathClient::FreeStaging(uint8_t* data, size_t bytes) {
  MutexLock lock(&staging_mu_);
  staging_ranges_->Free(static_cast<uint64_t>(data - staging_), bytes);
  put_buffer_bytes_ -= bytes;
  staging_freed_.SignalAll();
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
