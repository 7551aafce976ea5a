#include "client/data_port_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client/fetch_receiver.h"
#include "client/lookup_wire.h"
#include "common/stack_arena.h"
#include "key/checksum.h"
#include "client/put_header.h"
#include "proto/data_port_wire.h"

namespace kvcache {
namespace {

// Payload is read (and hashed) in pieces of this size.
constexpr size_t kRecvPiece = 256 << 10;

// After a failed read or write on `fd`, which it closes: if the socket's
// timeout (the call's deadline) passed, the daemon is there but did not
// answer in time, and would not answer over gRPC either, so that is the
// call's answer (a hung daemon costs one deadline, not two). Anything else
// is a broken transport, which the caller may retry over gRPC.
Transport::Outcome Failed(std::unique_ptr<ByteStream> stream, const std::string& what) {
  const bool timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
  stream.reset();
  if (timed_out) {
    return {absl::DeadlineExceededError(
                absl::StrCat("data port: no answer within the deadline (", what, ")")),
            false};
  }
  return {absl::UnavailableError(absl::StrCat("data port: ", what)), true};
}

}  // namespace

DataPortClient::DataPortClient(const sockaddr_storage& address, socklen_t address_len,
                               const Options& options)
    : address_(address), address_len_(address_len), options_(options) {}

DataPortClient::~DataPortClient() = default;

std::unique_ptr<ByteStream> DataPortClient::Acquire() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<ByteStream> stream = std::move(idle_.back());
      idle_.pop_back();
      return stream;
    }
  }
  const int fd = socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  timeval tv = absl::ToTimeval(options_.timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address_), address_len_) != 0) {
    close(fd);
    return nullptr;
  }
  std::unique_ptr<ByteStream> stream;
  if (options_.tls != nullptr) {
    absl::StatusOr<std::unique_ptr<ByteStream>> secured =
        options_.tls->Connect(fd, options_.server_name);
    if (!secured.ok()) return nullptr;  // the call goes over gRPC, which says why
    stream = *std::move(secured);
  } else {
    stream = std::make_unique<ByteStream>(fd);
  }
  if ((!options_.token.empty() || !options_.act_for_tenant.empty()) && !Authenticate(*stream)) {
    return nullptr;
  }
  return stream;
}

bool DataPortClient::Authenticate(ByteStream& stream) const {
  const std::string& tenant = options_.act_for_tenant;
  const bool acting = !tenant.empty();
  uint32_t head[3] = {acting ? kDataPortAuthForMagic : kDataPortAuthMagic,
                      static_cast<uint32_t>(options_.token.size()),
                      static_cast<uint32_t>(tenant.size())};
  iovec iov[3] = {{head, acting ? sizeof(head) : 2 * sizeof(uint32_t)},
                  {const_cast<char*>(options_.token.data()), options_.token.size()},
                  {const_cast<char*>(tenant.data()), tenant.size()}};
  uint32_t result[3];
  if (!stream.WriteFullV(iov, 3) || !stream.ReadFull(result, sizeof(result)) ||
      result[0] != kAuthResultFrame || result[2] > kMaxEndMessageBytes) {
    return false;
  }
  std::string message(result[2], '\0');
  return stream.ReadFull(message.data(), message.size()) && result[1] == 0;
}

void DataPortClient::Release(std::unique_ptr<ByteStream> stream) {
  MutexLock lock(&mu_);
  if (idle_.size() < options_.max_idle) idle_.push_back(std::move(stream));
}

Transport::Outcome DataPortClient::Fetch(const FetchCall& call,
                                         absl::Span<const FetchTarget> targets,
                                         FetchProgress* progress) {
  auto broken = [](const std::string& why) {
    return Outcome{absl::UnavailableError(absl::StrCat("data port: ", why)), true};
  };
  std::unique_ptr<ByteStream> stream = Acquire();
  if (stream == nullptr) return broken("cannot connect");
  // Header and body in one send.
  std::string wire(8, '\0');
  MakeFetchRequest(call, targets).AppendToString(&wire);
  const uint32_t head[2] = {kDataPortMagic, static_cast<uint32_t>(wire.size() - 8)};
  std::memcpy(wire.data(), head, sizeof(head));
  iovec request_iov = {wire.data(), wire.size()};
  if (!stream->WriteFullV(&request_iov, 1)) return Failed(std::move(stream), "request not sent");
  FetchReceiver receiver(targets, options_.verify_checksums, progress);
  while (true) {
    // Both frames start with at least 12 bytes: read those in one go.
    static_assert(kEndFrameHeaderBytes <= kChunkFrameHeaderBytes);
    uint8_t frame[kChunkFrameHeaderBytes];
    if (!stream->ReadFull(frame, kEndFrameHeaderBytes)) return Failed(std::move(stream), "no reply");
    uint32_t kind;
    std::memcpy(&kind, frame, 4);
    if (kind == kEndFrame) return ReadEnd(std::move(stream), frame);
    if (kind != kChunkFrame ||
        !stream->ReadFull(frame + kEndFrameHeaderBytes,
                  kChunkFrameHeaderBytes - kEndFrameHeaderBytes)) {
      stream.reset();
      return broken("bad frame");
    }
    const FetchChunkHeader h = DecodeChunkFrameHeader(frame);
    absl::StatusOr<uint8_t*> to = receiver.Begin(h);
    if (!to.ok()) {
      stream.reset();
      return broken(std::string(to.status().message()));
    }
    // Each piece is hashed while it is still in cache and while the daemon
    // sends the next one.
    for (uint64_t done = 0; done < h.data_length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kRecvPiece, h.data_length - done));
      uint8_t* piece = *to + done;
      if (!stream->ReadFull(piece, n)) return Failed(std::move(stream), "reply cut mid-block");
      if (ChecksumStream* hash = receiver.checksum()) hash->Update({piece, n});
      done += n;
    }
    if (absl::Status s = receiver.End(); !s.ok()) {
      stream.reset();  // the rest of the reply is unread: the connection is spent
      return Outcome{s, false};
    }
  }
}

Transport::Outcome DataPortClient::ReadEnd(std::unique_ptr<ByteStream> stream,
                                           const uint8_t* frame) {
  uint32_t code, length;
  std::memcpy(&code, frame + 4, 4);
  std::memcpy(&length, frame + 8, 4);
  std::string message(std::min(length, kMaxEndMessageBytes), '\0');
  if (length > kMaxEndMessageBytes || !stream->ReadFull(message.data(), message.size())) {
    stream.reset();
    return Outcome{absl::UnavailableError("data port: bad END frame"), true};
  }
  Release(std::move(stream));
  return Outcome{absl::Status(static_cast<absl::StatusCode>(code), message), false};
}

Transport::Outcome DataPortClient::Lookup(const std::string& ns, absl::Span<const BlockKey> keys,
                                          LookupResult* result) {
  if (!options_.serves_lookup) return Outcome{absl::OkStatus(), false, /*partial=*/true};
  StackArena stack;
  auto& response = *google::protobuf::Arena::CreateMessage<v1::LookupResponse>(stack.arena());
  // One buffer per thread carries the request and then the answer: a
  // chain's keys and sizes are tens of KiB, allocated once, not per call.
  thread_local std::string wire;
  wire.assign(8, '\0');  // room for the frame's head
  // A daemon that serves lookups on its data port reads packed keys too.
  const bool packed = PackableKeys(keys);
  AppendLookupRequest(ns, keys, packed, &wire);
  const Outcome outcome = ExchangeLookup(&wire, &response);
  if (wire.capacity() > (1 << 20)) std::string().swap(wire);  // a huge one is not kept
  if (!outcome.status.ok()) return outcome;
  return Outcome{ReadLookupResponse(response, keys.size(), packed, result), false};
}

Transport::Outcome DataPortClient::ExchangeLookup(std::string* wire,
                                                  v1::LookupResponse* response) {
  auto broken = [](const std::string& why) {
    return Outcome{absl::UnavailableError(absl::StrCat("data port: ", why)), true};
  };
  std::unique_ptr<ByteStream> stream = Acquire();
  if (stream == nullptr) return broken("cannot connect");
  const uint32_t head[2] = {kDataPortLookupMagic, static_cast<uint32_t>(wire->size() - 8)};
  std::memcpy(wire->data(), head, sizeof(head));
  iovec request_iov = {wire->data(), wire->size()};
  if (!stream->WriteFullV(&request_iov, 1)) return Failed(std::move(stream), "request not sent");
  stream->AwaitReadable(options_.lookup_spin);
  uint32_t frame[3];
  if (!stream->ReadFull(frame, kLookupResultFrameHeaderBytes)) return Failed(std::move(stream), "no reply");
  const auto code = static_cast<absl::StatusCode>(frame[1]);
  const uint32_t length = frame[2];
  const uint32_t most = code == absl::StatusCode::kOk ? kMaxLookupResponseBytes : kMaxEndMessageBytes;
  if (frame[0] != kLookupResultFrame || length > most) {
    stream.reset();
    return broken("bad lookup reply");
  }
  wire->resize(length);  // the request is sent: its buffer holds the reply
  if (!stream->ReadFull(wire->data(), wire->size())) return Failed(std::move(stream), "reply cut short");
  Release(std::move(stream));
  if (code != absl::StatusCode::kOk) return Outcome{absl::Status(code, *wire), false};
  if (!response->ParseFromString(*wire)) {
    return Outcome{absl::InternalError("daemon sent a malformed LookupResponse"), false};
  }
  return Outcome{absl::OkStatus(), false};
}

Transport::Outcome DataPortClient::Put(const std::string& ns, const BlockKey& parent,
                                       absl::Span<const PutBlock> blocks,
                                       std::vector<v1::PutOutcome>* outcomes) {
  auto broken = [](const std::string& why) {
    return Outcome{absl::UnavailableError(absl::StrCat("data port: ", why)), true};
  };
  std::unique_ptr<ByteStream> stream = Acquire();
  if (stream == nullptr) return broken("cannot connect");
  // Send every block first: the daemon answers in order, and its small
  // replies wait in our socket buffer meanwhile.
  std::string previous = parent.ToBytes();
  for (const PutBlock& block : blocks) {
    const v1::PutBlockHeader header = MakePutHeader(ns, previous, block);
    const std::string encoded = header.SerializeAsString();
    uint32_t head[2] = {kDataPortPutMagic, static_cast<uint32_t>(encoded.size())};
    iovec iov[3] = {{head, sizeof(head)},
                    {const_cast<char*>(encoded.data()), encoded.size()},
                    {const_cast<char*>(block.bytes().data()), block.bytes().size()}};
    if (!stream->WriteFullV(iov, 3)) return Failed(std::move(stream), "put not sent");
    previous = block.key.ToBytes();
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    uint32_t result[4];
    if (!stream->ReadFull(result, sizeof(result))) return Failed(std::move(stream), "no put reply");
    if (result[0] != kPutResultFrame || result[3] > kMaxEndMessageBytes) {
      stream.reset();
      return broken("bad put reply");
    }
    std::string message(result[3], '\0');
    if (!stream->ReadFull(message.data(), message.size())) return Failed(std::move(stream), "put reply cut short");
    if (result[1] != 0) {
      stream.reset();  // later replies are unread: the connection is spent
      return Outcome{absl::Status(static_cast<absl::StatusCode>(result[1]), message), false};
    }
    outcomes->push_back(static_cast<v1::PutOutcome>(result[2]));
  }
  Release(std::move(stream));
  return Outcome{absl::OkStatus(), false};
}

}  // namespace kvcache
