#include "kvstore/put_reactor.h"

#include "absl/strings/str_cat.h"
#include "kvstore/put_admission.h"

namespace kvcache {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

PutReactor::PutReactor(ServiceContext& service, std::string tenant, v1::PutResponse* response)
    : service_(service), tenant_(std::move(tenant)), response_(response) {
  StartRead(&request_);
}

void PutReactor::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed (or the call was cancelled; then Finish is moot).
    staged_.reset();
    if (in_block_) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "put stream ended in the middle of a block"));
    } else {
      Finish(grpc::Status::OK);
    }
    return;
  }
  absl::Status status = Handle(request_);
  if (!status.ok()) {
    staged_.reset();
    service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
    Finish(ToGrpcStatus(status));
    return;
  }
  request_.Clear();
  StartRead(&request_);
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
  const std::string& data = request.data();
  service_.counters.bytes_in.fetch_add(data.size(), std::memory_order_relaxed);
  if (staged_ != nullptr) {
    if (absl::Status s = staged_->Append(Bytes(data)); !s.ok()) return s;
  } else {
    if (data.size() > discard_remaining_) {
      return absl::InvalidArgumentError("put data runs past the block's declared size");
    }
    discard_remaining_ -= data.size();
  }
  return FinishBlockIfComplete();
}

absl::Status PutReactor::BeginBlock(const v1::PutBlockHeader& header) {
  absl::StatusOr<PutAdmission> admission = AdmitPut(service_, tenant_, header);
  if (!admission.ok()) return admission.status();
  in_block_ = true;
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
  absl::StatusOr<v1::PutOutcome> outcome = CommitPut(service_, *staged_);
  staged_.reset();
  in_block_ = false;
  if (!outcome.ok()) return outcome.status();
  Record(*outcome);
  return absl::OkStatus();
}

void PutReactor::Record(v1::PutOutcome outcome) {
  response_->add_outcomes(outcome);
  if (outcome == v1::PUT_STORED) response_->set_stored(response_->stored() + 1);
}

}  // namespace kvcache
