#include "kvstore/put_reactor.h"

#include "absl/strings/str_cat.h"

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
  const ServiceLimits& limits = service_.limits;
  if (absl::Status s = ValidateNamespace(header.namespace_(), limits); !s.ok()) return s;
  absl::StatusOr<BlockKey> key = BlockKey::FromBytes(header.key());
  if (!key.ok()) return key.status();
  BlockMeta meta;
  meta.key = *key;
  if (!header.parent_key().empty()) {
    absl::StatusOr<BlockKey> parent = BlockKey::FromBytes(header.parent_key());
    if (!parent.ok()) return absl::InvalidArgumentError(absl::StrCat("parent ", parent.status().message()));
    if (*parent == *key) return absl::InvalidArgumentError("a block cannot be its own parent");
    meta.parent = *parent;
  }
  if (header.size() == 0 || header.size() > limits.max_block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("block size ", header.size(),
                                                   " not in [1, ", limits.max_block_bytes, "]"));
  }
  meta.size = header.size();
  meta.checksum = header.checksum();
  absl::StatusOr<NamespaceId> ns =
      service_.store.namespaces().Intern(tenant_, header.namespace_());
  if (!ns.ok()) return ns.status();

  in_block_ = true;
  discard_remaining_ = meta.size;
  BlockIndex& index = service_.store.index();
  if (index.Inspect(*ns, meta.key).has_value()) {
    Record(v1::PUT_ALREADY_CACHED);
    return absl::OkStatus();
  }
  std::optional<BlockPin> parent_pin;
  if (!meta.parent.empty()) {
    parent_pin = index.PinAsParent(*ns, meta.parent);
    if (!parent_pin.has_value()) {
      Record(v1::PUT_PARENT_MISSING);
      return absl::OkStatus();
    }
  }
  absl::StatusOr<PageRun> pages = service_.store.AllocateEvicting(meta.size);
  if (!pages.ok()) {
    Record(v1::PUT_NO_SPACE);
    return absl::OkStatus();
  }
  staged_ = std::make_unique<StagedBlock>(*ns, std::move(meta), std::move(*pages),
                                          std::move(parent_pin), &service_.store.staged_bytes());
  return absl::OkStatus();
}

absl::Status PutReactor::FinishBlockIfComplete() {
  if (staged_ == nullptr) {
    if (discard_remaining_ == 0) in_block_ = false;
    return absl::OkStatus();
  }
  if (!staged_->complete()) return absl::OkStatus();
  absl::StatusOr<InsertOutcome> outcome = staged_->Commit(service_.store.index());
  staged_.reset();
  in_block_ = false;
  if (!outcome.ok()) return outcome.status();
  switch (*outcome) {
    case InsertOutcome::kStored:
      Record(v1::PUT_STORED);
      break;
    case InsertOutcome::kAlreadyCached:
      Record(v1::PUT_ALREADY_CACHED);
      break;
    case InsertOutcome::kParentMissing:
      Record(v1::PUT_PARENT_MISSING);
      break;
  }
  return absl::OkStatus();
}

void PutReactor::Record(v1::PutOutcome outcome) {
  response_->add_outcomes(outcome);
  if (outcome == v1::PUT_STORED) {
    response_->set_stored(response_->stored() + 1);
    service_.counters.puts_stored.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace kvcache
