#include "kvstore/server/put_reactor.h"

#include "absl/strings/str_cat.h"
#include "kvstore/server/put_admission.h"
#include "kvstore/server/raw_message.h"

namespace kvcache {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

PutReactor::PutReactor(ServiceContext& service, std::string tenant,
                       std::shared_ptr<ConnectionShare> share, grpc::ByteBuffer* raw_response)
    : service_(service),
      tenant_(std::move(tenant)),
      share_(std::move(share)),
      raw_response_(raw_response) {
  if (service_.stall_watchdog != nullptr) service_.stall_watchdog->Add(this);
  StartRead(&raw_request_);
}

void PutReactor::OnDone() {
  service_.counters.RecordLatency(RequestPath::kGrpc, RequestOp::kPut, absl::Now() - started_);
  // After this no OnStalled runs, so nothing can touch this any more.
  if (service_.stall_watchdog != nullptr) service_.stall_watchdog->Remove(this);
  delete this;
}

void PutReactor::OnStalled() {
  // Held means a reaction is running: the stream is not stalled, and the
  // watchdog (which holds its own lock for every stream) must not wait on
  // one that may be making room for a block.
  if (!mu_.TryLock()) return;
  StopWaiting();
  if (!ended_ && in_block_) {
    service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
    End(absl::DeadlineExceededError(absl::StrCat(
        "put stream sent nothing for ", absl::FormatDuration(service_.stall_watchdog->limit()),
        " in the middle of a block (message ", messages_,
        "); its staging was freed (--client_stall_timeout_s)")));
  }
  mu_.Unlock();
}

void PutReactor::OnReadDone(bool ok) {
  StopWaiting();
  MutexLock lock(&mu_);
  if (ended_) return;  // the watchdog ended the stream meanwhile
  if (!ok) {
    // The client half-closed (or the call was cancelled; then Finish is moot).
    End(in_block_ ? absl::InvalidArgumentError("put stream ended in the middle of a block")
                  : absl::OkStatus());
    return;
  }
  ++messages_;
  absl::Status status = ParseRaw(raw_request_, &request_);
  if (!status.ok()) {
    status = absl::InvalidArgumentError(absl::StrCat("message ", messages_, ": ", status.message()));
  } else {
    status = Handle(request_);
  }
  if (!status.ok()) {
    service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
    End(status);
    return;
  }
  request_.Clear();
  raw_request_.Clear();
  // Only a stream in the middle of a block holds anything worth cutting off.
  if (in_block_) StartWaiting();
  StartRead(&raw_request_);
}

void PutReactor::End(const absl::Status& status) {
  ended_ = true;
  staged_.reset();
  absl::Status final_status = status;
  if (final_status.ok()) final_status = SerializeRaw(response_, raw_response_);
  Finish(ToGrpcStatus(final_status));
}

absl::Status PutReactor::Handle(const v1::PutRequest& request) {
  if (request.has_header()) {
    if (in_block_) {
      return absl::InvalidArgumentError("new block header before the previous block was complete");
    }
    if (absl::Status s = BeginBlock(request.header()); !s.ok()) return s;
  } else if (!in_block_) {
    return absl::InvalidArgumentError("put data before any block header");
  }
  service_.counters.AddBytes(RequestPath::kGrpc, RequestOp::kPut, request.data().size());
  if (absl::Status s = Receive(request.data()); !s.ok()) return s;
  return FinishBlockIfComplete();
}

absl::Status PutReactor::Receive(const std::string& data) {
  if (staged_ != nullptr) {
    absl::Status appended = staged_->Append(Bytes(data));
    if (!IsNoRoom(appended)) return appended;
    // No room for these bytes: the block is not stored; drop the rest.
    discard_remaining_ = staged_->meta().size - staged_->received();
    staged_.reset();
    Record(v1::PUT_NO_SPACE);
  }
  if (data.size() > discard_remaining_) {
    return absl::InvalidArgumentError("put data runs past the block's declared size");
  }
  discard_remaining_ -= data.size();
  return absl::OkStatus();
}

absl::Status PutReactor::BeginBlock(const v1::PutBlockHeader& header) {
  absl::StatusOr<PutAdmission> admission = AdmitPut(service_, tenant_, share_.get(), header);
  if (!admission.ok()) return admission.status();
  in_block_ = true;
  block_namespace_ = header.namespace_();
  discard_remaining_ = header.size();
  staged_ = std::move(admission->staged);
  if (staged_ == nullptr) Record(admission->outcome);
  return absl::OkStatus();
}

absl::Status PutReactor::FinishBlockIfComplete() {
  if (staged_ == nullptr) {
    if (discard_remaining_ == 0) in_block_ = false;
    return absl::OkStatus();
  }
  if (!staged_->complete()) return absl::OkStatus();
  absl::StatusOr<v1::PutOutcome> outcome = CommitPut(service_, tenant_, block_namespace_, *staged_);
  staged_.reset();
  in_block_ = false;
  if (!outcome.ok()) return outcome.status();
  Record(*outcome);
  return absl::OkStatus();
}

void PutReactor::Record(v1::PutOutcome outcome) {
  response_.add_outcomes(outcome);
  if (outcome == v1::PUT_STORED) response_.set_stored(response_.stored() + 1);
}

}  // namespace kvcache
