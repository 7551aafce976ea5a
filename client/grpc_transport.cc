#include "client/grpc_transport.h"

#include <algorithm>
#include <cstring>

#include "client/fetch_receiver.h"
#include "client/grpc_status.h"
#include "client/lookup_wire.h"
#include "client/put_header.h"
#include "common/stack_arena.h"
#include "common/transport_args.h"
#include "proto/fetch_chunk_codec.h"

namespace kvcache {

absl::StatusOr<std::shared_ptr<GrpcTransport>> GrpcTransport::Create(const Options& options) {
  std::shared_ptr<GrpcTransport> transport(new GrpcTransport(options));
  for (int i = 0; i < std::max(1, options.streams); ++i) {
    grpc::ChannelArguments args;
    // A chunk and its header, with room to spare.
    args.SetMaxReceiveMessageSize(static_cast<int>(options.chunk_bytes) + (1 << 20));
    args.SetMaxSendMessageSize(static_cast<int>(options.chunk_bytes) + (1 << 20));
    for (const auto& [name, value] : BulkTransferChannelArgs()) args.SetInt(name, value);
    // A connection of its own per channel, so streams do not share one socket.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("kvcache.channel_index", i);
    // A cache should find a restarted daemon in a second or two, not after
    // gRPC's default backoff (which grows to two minutes); calls in between
    // fail fast and are misses anyway.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(options.address, options.security, args);
    if (!channel.ok()) return channel.status();
    transport->channels_.push_back(*std::move(channel));
  }
  transport->stub_ = v1::KvCache::NewStub(transport->channels_[0]);
  return transport;
}

absl::Status GrpcTransport::Hello(v1::HelloResponse* hello) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  absl::Status status = FromGrpc(stub_->Hello(&ctx, v1::HelloRequest(), hello));
  if (status.ok()) packed_lookup_.store(hello->packed_lookup() ? 1 : 0, std::memory_order_relaxed);
  return status;
}

Transport::Outcome GrpcTransport::Fetch(const FetchCall& call,
                                        absl::Span<const FetchTarget> targets,
                                        FetchProgress* progress) {
  const std::shared_ptr<grpc::Channel>& channel = channels_[call.stream % channels_.size()];
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  const v1::FetchRequest request = MakeFetchRequest(call, targets);
  const grpc::internal::RpcMethod method("/kvcache.v1.KvCache/Fetch",
                                         grpc::internal::RpcMethod::SERVER_STREAMING, channel);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel.get(), method, &ctx,
                                                                    request));
  FetchReceiver receiver(targets, options_.verify_checksums, progress);
  absl::Status error;
  grpc::ByteBuffer buffer;
  std::vector<grpc::Slice> slices;
  std::vector<absl::Span<const uint8_t>> pieces;
  while (error.ok() && reader->Read(&buffer)) {
    slices.clear();
    pieces.clear();
    if (!buffer.Dump(&slices).ok()) {
      error = absl::InternalError("unreadable fetch reply");
      break;
    }
    for (const grpc::Slice& s : slices) pieces.emplace_back(s.begin(), s.size());
    absl::StatusOr<DecodedFetchChunk> chunk = DecodeFetchChunk(pieces);
    if (!chunk.ok()) {
      error = chunk.status();
      break;
    }
    absl::StatusOr<uint8_t*> to = receiver.Begin(chunk->header);
    if (!to.ok()) {
      error = to.status();
      break;
    }
    for (absl::Span<const uint8_t> piece : chunk->data) {
      std::memcpy(*to, piece.data(), piece.size());
      if (ChecksumStream* hash = receiver.checksum()) hash->Update({*to, piece.size()});
      *to += piece.size();
    }
    error = receiver.End();
  }
  if (!error.ok()) ctx.TryCancel();
  absl::Status finish = FromGrpc(reader->Finish());
  return Outcome{error.ok() ? finish : error, false};
}

Transport::Outcome GrpcTransport::Put(const std::string& ns, const BlockKey& parent,
                                      absl::Span<const PutBlock> blocks,
                                      std::vector<v1::PutOutcome>* outcomes) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  v1::PutResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::PutRequest>> writer = stub_->Put(&ctx, &response);
  const size_t chunk_bytes = options_.chunk_bytes;
  BlockKey previous = parent;
  v1::PutRequest request;
  for (const PutBlock& block : blocks) {
    *request.mutable_header() = MakePutHeader(ns, previous.ToBytes(), block);
    const absl::string_view bytes = block.bytes();
    size_t offset = 0;
    do {
      const size_t n = std::min(chunk_bytes, bytes.size() - offset);
      request.set_data(bytes.data() + offset, n);
      offset += n;
      if (!writer->Write(request)) break;
      request.Clear();
    } while (offset < bytes.size());
    request.Clear();
    previous = block.key;
  }
  writer->WritesDone();
  absl::Status status = FromGrpc(writer->Finish());
  if (!status.ok()) return Outcome{status, false};
  for (int o : response.outcomes()) outcomes->push_back(static_cast<v1::PutOutcome>(o));
  return Outcome{absl::OkStatus(), false};
}

Transport::Outcome GrpcTransport::Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                                         LookupResult* result) {
  // The daemon's Hello says whether it reads packed keys; a daemon that does
  // not answer it would not answer the lookup either.
  if (packed_lookup_.load(std::memory_order_relaxed) < 0) {
    v1::HelloResponse hello;
    if (absl::Status s = Hello(&hello); !s.ok()) return Outcome{s, false};
  }
  StackArena stack;
  auto& request = *google::protobuf::Arena::CreateMessage<v1::LookupRequest>(stack.arena());
  auto& response = *google::protobuf::Arena::CreateMessage<v1::LookupResponse>(stack.arena());
  // Packed into one field where the daemon reads that (no allocation per
  // key on either side; a chain has up to thousands), else a field per key.
  request.set_namespace_(ns);
  const bool packed = packed_lookup_.load(std::memory_order_relaxed) == 1 && PackableKeys(keys);
  if (packed) {
    AppendPackedKeys(keys, request.mutable_packed_keys());
    request.set_packed_key_size(static_cast<uint32_t>(keys.front().size()));
  } else {
    for (const BlockKey& k : keys) request.add_keys(k.data(), k.size());
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.deadline);
  absl::Status status = FromGrpc(stub_->Lookup(&ctx, request, &response));
  if (!status.ok()) return Outcome{status, false};
  return Outcome{ReadLookupResponse(response, keys.size(), packed, result), false};
}

}  // namespace kvcache
