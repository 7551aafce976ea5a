#include "kvstore/server/data_port_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <array>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/stack_arena.h"
#include "common/tcp_listen.h"
#include "kvstore/server/fetch_plan.h"
#include "kvstore/server/lookup_handler.h"
#include "kvstore/server/put_admission.h"
#include "proto/data_port_wire.h"

namespace kvcache {
namespace {

void SetTimeout(int fd, int option, absl::Duration d) {
  timeval tv = absl::ToTimeval(d);
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

// An END frame: its fixed part and (not owned) its message.
struct EndFrame {
  explicit EndFrame(const absl::Status& status)
      : message(status.message().substr(0, kMaxEndMessageBytes)),
        head{kEndFrame, static_cast<uint32_t>(status.code()),
             static_cast<uint32_t>(message.size())} {}
  void AppendTo(std::vector<iovec>& iov) {
    iov.push_back({head, sizeof(head)});
    if (!message.empty()) iov.push_back({const_cast<char*>(message.data()), message.size()});
  }
  std::string message;
  uint32_t head[3];
};

bool SendEnd(ByteStream& stream, const absl::Status& status) {
  EndFrame end(status);
  std::vector<iovec> iov;
  end.AppendTo(iov);
  return stream.WriteFullV(iov.data(), iov.size());
}

// A status and its message after a fixed head of `head_words` u32s (the
// put, lookup and auth replies).
bool SendResult(ByteStream& stream, uint32_t* head, size_t head_words, const std::string& tail) {
  iovec iov[2] = {{head, head_words * 4}, {const_cast<char*>(tail.data()), tail.size()}};
  return stream.WriteFullV(iov, tail.empty() ? 1 : 2);
}

// Reads and drops `n` bytes. False if the connection ends first.
bool Drain(ByteStream& stream, uint64_t n) {
  std::vector<uint8_t> scratch(std::min<uint64_t>(n, 256 << 10));
  for (uint64_t left = n; left > 0;) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(left, scratch.size()));
    if (!stream.ReadFull(scratch.data(), len)) return false;
    left -= len;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataPortServer>> DataPortServer::Start(ServiceContext& service,
                                                                       const Options& options) {
  auto listening = ListenTcp(options.host, options.port);
  if (!listening.ok()) {
    return absl::Status(listening.status().code(),
                        absl::StrCat("data port: ", listening.status().message()));
  }
  std::unique_ptr<DataPortServer> server(new DataPortServer(service, options, listening->second));
  server->connections_ = std::make_unique<ConnectionThreads>(
      listening->first, options.max_connections, [s = server.get()](int fd) { s->Serve(fd); });
  return server;
}

void DataPortServer::Serve(int raw_fd) {
  int one = 1;
  setsockopt(raw_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SetTimeout(raw_fd, SO_SNDTIMEO, options_.send_timeout);
  // The handshake is inside a request: the client may not pause long.
  SetTimeout(raw_fd, SO_RCVTIMEO, options_.stall_timeout);
  std::unique_ptr<ByteStream> stream;
  if (std::shared_ptr<const TlsContext> tls = Tls(); tls != nullptr) {
    absl::StatusOr<std::unique_ptr<ByteStream>> accepted = tls->Accept(raw_fd);
    if (!accepted.ok()) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return;  // a plaintext client, a certificate we do not trust: nothing served
    }
    stream = *std::move(accepted);
  } else {
    stream = std::make_unique<ByteStream>(raw_fd, /*owns_fd=*/false);  // ConnectionThreads closes it
  }
  stream->SetReadTimeout(options_.idle_timeout);
  Connection connection{*stream, nullptr, std::nullopt};
  if (service_.auth == nullptr || !service_.auth->enabled()) {
    SetIdentity(connection, Identity{kDefaultTenant, Role::kAdmin});
  } else if (const std::string cn = stream->PeerCommonName(); !cn.empty()) {
    if (absl::StatusOr<Identity> who = service_.auth->OfCaller("", cn); who.ok()) {
      SetIdentity(connection, *std::move(who));
    }
  }
  while (ServeOne(connection)) {
  }
}

bool DataPortServer::ServeOne(Connection& c) {
  uint32_t head[2];
  if (!c.stream.ReadFull(head, sizeof(head))) return false;  // closed, idle or cut off
  if (head[0] == kDataPortAuthMagic || head[0] == kDataPortAuthForMagic) {
    return ServeAuth(c, head[1], head[0] == kDataPortAuthForMagic);
  }
  if (!c.who.has_value()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;  // no identity yet: nothing is served
  }
  // Inside a request the client may pause only briefly: a put staged
  // halfway holds pages. Between requests the idle timeout applies.
  c.stream.SetReadTimeout(options_.stall_timeout);
  bool keep = false;
  const absl::Time start = absl::Now();
  if (head[0] == kDataPortMagic) {
    keep = ServeFetch(c, head[1]);
    service_.counters.RecordLatency(RequestPath::kDataPort, RequestOp::kFetch, absl::Now() - start);
  }
  if (head[0] == kDataPortPutMagic) {
    keep = ServePut(c, head[1]);
    service_.counters.RecordLatency(RequestPath::kDataPort, RequestOp::kPut, absl::Now() - start);
  }
  if (head[0] == kDataPortLookupMagic) {
    keep = ServeLookup(c, head[1]);
    service_.counters.RecordLatency(RequestPath::kDataPort, RequestOp::kLookup,
                                    absl::Now() - start);
  }
  c.stream.SetReadTimeout(options_.idle_timeout);
  return keep;  // false too for anything not our protocol
}

bool DataPortServer::ServeAuth(Connection& c, uint32_t token_length, bool acting) {
  uint32_t tenant_length = 0;
  if (acting && !c.stream.ReadFull(&tenant_length, sizeof(tenant_length))) return false;
  if (token_length > kMaxAuthTokenBytes || tenant_length > kMaxAuthTenantBytes) return false;
  std::string token(token_length, '\0');
  std::string tenant(tenant_length, '\0');
  if (!c.stream.ReadFull(token.data(), token.size()) ||
      !c.stream.ReadFull(tenant.data(), tenant.size())) {
    return false;
  }
  absl::StatusOr<Identity> who = Identity{kDefaultTenant, Role::kAdmin};
  if (service_.auth != nullptr && service_.auth->enabled()) {
    who = service_.auth->OfCaller(token.empty() ? "" : absl::StrCat("Bearer ", token),
                                  c.stream.PeerCommonName());
  }
  if (who.ok()) who = ActFor(*std::move(who), tenant);
  const std::string message(who.status().message().substr(0, kMaxEndMessageBytes));
  uint32_t head[3] = {kAuthResultFrame, static_cast<uint32_t>(who.status().code()),
                      static_cast<uint32_t>(message.size())};
  if (!who.ok()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    SendResult(c.stream, head, 3, message);
    return false;
  }
  SetIdentity(c, *std::move(who));
  return SendResult(c.stream, head, 3, message);
}

void DataPortServer::SetIdentity(Connection& c, Identity who) {
  // What this connection stages and pins is bounded on its own, and with
  // the rest of its tenant's.
  if (service_.shares != nullptr) c.share = service_.shares->ForOne(who.tenant);
  c.who = std::move(who);
}

void DataPortServer::SetTls(std::shared_ptr<const TlsContext> tls) {
  MutexLock lock(&tls_mu_);
  tls_ = std::move(tls);
}

std::shared_ptr<const TlsContext> DataPortServer::Tls() const {
  MutexLock lock(&tls_mu_);
  return tls_;
}

bool DataPortServer::ServePut(Connection& c, uint32_t header_length) {
  ByteStream& stream = c.stream;
  auto reply = [&stream](const absl::Status& status, v1::PutOutcome outcome) {
    const std::string message(status.message().substr(0, kMaxEndMessageBytes));
    uint32_t head[4] = {kPutResultFrame, static_cast<uint32_t>(status.code()),
                        static_cast<uint32_t>(outcome), static_cast<uint32_t>(message.size())};
    return SendResult(stream, head, 4, message);
  };
  if (header_length > kMaxPutHeaderBytes) {
    reply(absl::InvalidArgumentError(absl::StrCat("put header of ", header_length,
                                                  " bytes; at most ", kMaxPutHeaderBytes)),
          v1::PUT_OUTCOME_UNSPECIFIED);
    return false;  // cannot find the next request after it
  }
  std::string bytes(header_length, '\0');
  v1::PutBlockHeader header;
  if (!stream.ReadFull(bytes.data(), bytes.size())) return false;
  if (!header.ParseFromString(bytes)) {
    reply(absl::InvalidArgumentError("malformed PutBlockHeader"), v1::PUT_OUTCOME_UNSPECIFIED);
    return false;
  }
  service_.counters.AddBytes(RequestPath::kDataPort, RequestOp::kPut, header.size());
  const absl::Status permitted = Permit(*c.who, Role::kWrite);
  absl::StatusOr<PutAdmission> admission =
      permitted.ok() ? AdmitPut(service_, c.who->tenant, c.share.get(), header) : permitted;
  if (!admission.ok() || admission->staged == nullptr) {
    // Not stored: read and drop the payload (if its size is sane) so the
    // connection stays in step, then say why.
    if (header.size() > service_.limits.max_block_bytes) {
      reply(admission.status(), v1::PUT_OUTCOME_UNSPECIFIED);
      return false;
    }
    if (!Drain(stream, header.size())) return false;
    if (!admission.ok()) {
      service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
      return reply(admission.status(), v1::PUT_OUTCOME_UNSPECIFIED);
    }
    return reply(absl::OkStatus(), admission->outcome);
  }
  StagedBlock& staged = *admission->staged;
  // Pages are taken just before their bytes are read: wait for the first
  // byte first, so a client that sent a header alone holds nothing.
  pollfd readable{stream.fd(), POLLIN, 0};
  if (!stream.Buffered() &&
      poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(options_.stall_timeout))) !=
          1) {
    return false;  // stalled after the header (or gone); nothing was staged
  }
  absl::Status received = staged.ReceiveInto(
      header.size(), [&stream](uint8_t* dst, size_t len) { return stream.ReadFull(dst, len); });
  if (IsNoRoom(received)) {
    // No room for bytes that arrived: not stored; drop the rest, stay in step.
    const uint64_t rest = header.size() - staged.received();
    admission->staged.reset();
    return Drain(stream, rest) && reply(absl::OkStatus(), v1::PUT_NO_SPACE);
  }
  // Otherwise the client went away or stalled mid-block; staging is freed.
  if (!received.ok()) return false;
  absl::StatusOr<v1::PutOutcome> outcome = CommitPut(service_, c.who->tenant, header.namespace_(), staged);
  if (!outcome.ok()) {
    service_.counters.puts_rejected.fetch_add(1, std::memory_order_relaxed);
    return reply(outcome.status(), v1::PUT_OUTCOME_UNSPECIFIED);
  }
  return reply(absl::OkStatus(), *outcome);
}

bool DataPortServer::ServeLookup(Connection& c, uint32_t body_length) {
  ByteStream& stream = c.stream;
  auto reply = [&stream](const absl::Status& status, const std::string& body) {
    const std::string message(status.message().substr(0, kMaxEndMessageBytes));
    const std::string& payload = status.ok() ? body : message;
    uint32_t head[3] = {kLookupResultFrame, static_cast<uint32_t>(status.code()),
                        static_cast<uint32_t>(payload.size())};
    return SendResult(stream, head, 3, payload);
  };
  if (body_length > kMaxDataPortRequestBytes) {
    reply(absl::InvalidArgumentError(absl::StrCat("data port request of ", body_length,
                                                  " bytes; at most ", kMaxDataPortRequestBytes)),
          {});
    return false;  // cannot find the next request after it
  }
  StackArena stack;  // as over gRPC
  auto& request = *google::protobuf::Arena::CreateMessage<v1::LookupRequest>(stack.arena());
  auto& response = *google::protobuf::Arena::CreateMessage<v1::LookupResponse>(stack.arena());
  std::string bytes(body_length, '\0');
  if (!stream.ReadFull(bytes.data(), bytes.size())) return false;
  if (!request.ParseFromString(bytes)) {
    reply(absl::InvalidArgumentError("malformed LookupRequest"), {});
    return false;
  }
  const absl::Status status = AnswerLookup(service_, c.who->tenant, request, response);
  bytes.clear();
  if (status.ok()) response.AppendToString(&bytes);
  return reply(status, bytes);
}

bool DataPortServer::ServeFetch(Connection& c, uint32_t body_length) {
  ByteStream& stream = c.stream;
  if (body_length > kMaxDataPortRequestBytes) {
    SendEnd(stream, absl::InvalidArgumentError(absl::StrCat(
                    "data port request of ", body_length, " bytes; at most ", kMaxDataPortRequestBytes)));
    return false;
  }
  std::string body(body_length, '\0');
  if (!stream.ReadFull(body.data(), body.size())) return false;
  v1::FetchRequest request;
  if (!request.ParseFromString(body)) {
    SendEnd(stream, absl::InvalidArgumentError("malformed FetchRequest"));
    return false;
  }
  absl::StatusOr<FetchPlan> plan = PlanFetch(service_, c.who->tenant, c.share, request);
  if (!plan.ok()) return SendEnd(stream, plan.status());
  std::vector<iovec> iov;
  std::vector<std::array<uint8_t, kChunkFrameHeaderBytes>> headers(plan->items.size());
  for (size_t i = 0; i < plan->items.size(); ++i) {
    FetchPlanItem& item = plan->items[i];
    const BlockMeta& meta = item.pin.meta();
    const uint64_t n = item.end - item.offset;
    EncodeChunkFrameHeader({item.index, meta.size, meta.checksum, item.offset, n, item.tier},
                           headers[i].data());
    iov.push_back({headers[i].data(), kChunkFrameHeaderBytes});
    item.pin.block().pages().ForEachPiece(item.offset, n, [&](const uint8_t* p, size_t len) {
      iov.push_back({const_cast<uint8_t*>(p), len});
    });
    service_.counters.AddBytes(RequestPath::kDataPort, RequestOp::kFetch, n);
  }
  // The END frame rides in the same writev: one wake-up for the client.
  EndFrame end(absl::OkStatus());
  end.AppendTo(iov);
  return stream.WriteFullV(iov.data(), iov.size());
}

}  // namespace kvcache
