#include "kvstore/fetch_reactor.h"

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
                           const grpc::ByteBuffer& request)
    : service_(service), tenant_(std::move(tenant)) {
  absl::Status status = Start(request);
  if (!status.ok()) {
    items_.clear();
    Finish(ToGrpcStatus(status));
    return;
  }
  service_.counters.fetches.fetch_add(1, std::memory_order_relaxed);
  WriteNext();
}

absl::Status FetchReactor::Start(const grpc::ByteBuffer& raw) {
  v1::FetchRequest request;
  grpc::ByteBuffer copy(raw);
  if (!grpc::SerializationTraits<v1::FetchRequest>::Deserialize(&copy, &request).ok()) {
    return absl::InvalidArgumentError("malformed FetchRequest");
  }
  const ServiceLimits& limits = service_.limits;
  if (absl::Status s = ValidateNamespace(request.namespace_(), limits); !s.ok()) return s;
  if (request.items_size() == 0) return absl::InvalidArgumentError("fetch of no items");
  if (request.items_size() > static_cast<int>(limits.max_fetch_items)) {
    return absl::InvalidArgumentError(absl::StrCat("fetch of ", request.items_size(),
                                                   " items; at most ", limits.max_fetch_items));
  }
  std::vector<BlockKey> keys;
  keys.reserve(request.items_size());
  for (int i = 0; i < request.items_size(); ++i) {
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(request.items(i).key());
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("item ", i, ": ", key.status().message()));
    keys.push_back(*key);
  }
  chunk_bytes_ = request.max_chunk_bytes() == 0
                     ? limits.max_chunk_bytes
                     : std::min(request.max_chunk_bytes(), limits.max_chunk_bytes);
  chunk_bytes_ = std::max<uint32_t>(chunk_bytes_, 4096);

  std::optional<NamespaceId> ns =
      service_.store.namespaces().Find(tenant_, request.namespace_());
  for (int i = 0; ns.has_value() && i < request.items_size(); ++i) {
    std::optional<BlockPin> pin = service_.store.index().Pin(*ns, keys[i]);
    if (!pin.has_value()) break;  // the cached prefix ends here
    const v1::FetchItem& item = request.items(i);
    const uint64_t size = pin->meta().size;
    if (item.offset() > size || item.length() > size - item.offset()) {
      return absl::OutOfRangeError(absl::StrCat("item ", i, ": range [", item.offset(), ", +",
                                                item.length(), ") is outside the ", size,
                                                "-byte block"));
    }
    const uint64_t end = item.length() == 0 ? size : item.offset() + item.length();
    items_.push_back(Item{static_cast<uint32_t>(i), *std::move(pin), item.offset(), end});
  }
  if (items_.empty()) {
    return absl::NotFoundError(absl::StrCat("block ", keys[0].ToHex(), " is not cached"));
  }
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
  Item& item = items_[current_];
  const BlockMeta& meta = item.pin.meta();
  const uint64_t n = std::min<uint64_t>(item.end - item.offset, chunk_bytes_);
  FetchChunkHeader header{item.index, meta.size, meta.checksum, item.offset, n};
  const std::string encoded = EncodeFetchChunkHeader(header);
  std::vector<grpc::Slice> slices;
  slices.emplace_back(encoded.data(), encoded.size());
  item.pin.block().pages().ForEachPiece(
      item.offset, n, [&](const uint8_t* data, size_t len) {
        slices.push_back(PinnedSlice(data, len, item.pin));
      });
  item.offset += n;
  if (item.offset == item.end) ++current_;
  service_.counters.bytes_out.fetch_add(n, std::memory_order_relaxed);
  out_ = grpc::ByteBuffer(slices.data(), slices.size());
  StartWrite(&out_);
}

void FetchReactor::OnWriteDone(bool ok) {
  if (!ok) {
    // The client went away; nothing more can be sent.
    items_.clear();
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "fetch cancelled"));
    return;
  }
  WriteNext();
}

}  // namespace kvcache
