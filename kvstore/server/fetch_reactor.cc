#include "kvstore/server/fetch_reactor.h"

#include <grpc/slice.h>

#include "absl/strings/str_cat.h"
#include "proto/fetch_chunk_codec.h"

namespace kvcache {
namespace {

void ReleasePin(void* pin) { delete static_cast<BlockPin*>(pin); }

// A slice over arena bytes that keeps the block pinned while gRPC holds it.
grpc::Slice PinnedSlice(const uint8_t* data, size_t len, const BlockPin& pin) {
  grpc_slice s = grpc_slice_new_with_user_data(const_cast<uint8_t*>(data), len, ReleasePin,
                                               new BlockPin(pin));
  return grpc::Slice(s, grpc::Slice::STEAL_REF);
}

}  // namespace

FetchReactor::FetchReactor(ServiceContext& service, std::string tenant,
                           std::shared_ptr<ConnectionShare> share,
                           grpc::CallbackServerContext* context, const grpc::ByteBuffer& request)
    : service_(service), tenant_(std::move(tenant)), share_(std::move(share)), context_(context) {
  if (service_.stall_watchdog != nullptr) service_.stall_watchdog->Add(this);
  if (service_.io_workers != nullptr) {
    // Planning may read blocks back from NVMe or copy them down from the
    // GPU: not on gRPC's thread. gRPC
    // calls OnDone only after Finish, so this reactor outlives the work.
    service_.io_workers->Run([this, raw = request] { Begin(raw); });
    return;
  }
  Begin(request);
}

void FetchReactor::OnDone() {
  service_.counters.RecordLatency(RequestPath::kGrpc, RequestOp::kFetch, absl::Now() - started_);
  // After this no OnStalled runs, so nothing can touch this any more.
  if (service_.stall_watchdog != nullptr) service_.stall_watchdog->Remove(this);
  delete this;
}

void FetchReactor::OnStalled() {
  StopWaiting();
  context_->TryCancel();
}

void FetchReactor::Begin(const grpc::ByteBuffer& request) {
  absl::Status status = Start(request);
  if (!status.ok()) {
    items_.clear();
    Finish(ToGrpcStatus(status));
    return;
  }
  WriteNext();
}

absl::Status FetchReactor::Start(const grpc::ByteBuffer& raw) {
  v1::FetchRequest request;
  grpc::ByteBuffer copy(raw);
  if (!grpc::SerializationTraits<v1::FetchRequest>::Deserialize(&copy, &request).ok()) {
    return absl::InvalidArgumentError("malformed FetchRequest");
  }
  // A call with no deadline has the largest time_point.
  const auto deadline = context_->deadline();
  absl::StatusOr<FetchPlan> plan =
      PlanFetch(service_, tenant_, std::move(share_), request,
                deadline == std::chrono::system_clock::time_point::max() ? absl::InfiniteFuture()
                                                                        : absl::FromChrono(deadline));
  if (!plan.ok()) return plan.status();
  charge_ = std::move(plan->charge);
  chunk_bytes_ = plan->chunk_bytes;
  items_ = std::move(plan->items);
  return absl::OkStatus();
}

void FetchReactor::WriteNext() {
  // Every item sends at least one chunk (an empty one for an empty range),
  // so the client sees each item it was given.
  if (current_ == items_.size()) {
    items_.clear();  // drop our pins now; slices in flight keep their own
    Finish(grpc::Status::OK);
    return;
  }
  FetchPlanItem& item = items_[current_];
  const BlockMeta& meta = item.pin.meta();
  const uint64_t n = std::min<uint64_t>(item.end - item.offset, chunk_bytes_);
  FetchChunkHeader header{item.index, meta.size, meta.checksum, item.offset, n, item.tier};
  const std::string encoded = EncodeFetchChunkHeader(header);
  std::vector<grpc::Slice> slices;
  slices.emplace_back(encoded.data(), encoded.size());
  item.pin.block().pages().ForEachPiece(
      item.offset, n, [&](const uint8_t* data, size_t len) {
        slices.push_back(PinnedSlice(data, len, item.pin));
      });
  item.offset += n;
  if (item.offset == item.end) ++current_;
  service_.counters.AddBytes(RequestPath::kGrpc, RequestOp::kFetch, n);
  out_ = grpc::ByteBuffer(slices.data(), slices.size());
  if (current_ == items_.size()) {
    // The last chunk carries the status too: one less completion to wait for.
    items_.clear();
    StartWaiting();  // until OnDone: the client must take the last chunk
    StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    return;
  }
  StartWaiting();
  StartWrite(&out_);
}

void FetchReactor::OnWriteDone(bool ok) {
  StopWaiting();
  if (!ok) {
    // The client went away; nothing more can be sent.
    items_.clear();
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "fetch cancelled"));
    return;
  }
  WriteNext();
}

}  // namespace kvcache
