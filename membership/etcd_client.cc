#include "membership/etcd_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace kvcache {

std::string EtcdPrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(const std::string& endpoints,
                                                               absl::Duration timeout,
                                                               const ChannelSecurity& security) {
  std::vector<std::string> list = absl::StrSplit(endpoints, ',', absl::SkipWhitespace());
  if (list.empty()) return absl::InvalidArgumentError("etcd: no endpoint given");
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd: the call timeout must be positive");
  }
  // gRPC's ipv4: scheme takes a list and picks the first that connects.
  std::string target = list.size() == 1 ? list[0] : "ipv4:" + absl::StrJoin(list, ",");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(list[0], security);
  if (!credentials.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("etcd: ", credentials.status().message()));
  }
  // With several endpoints the target names none of them: the certificate
  // is checked against the first endpoint's host unless told otherwise.
  std::string server_name = security.tls_server_name;
  if (security.tls() && server_name.empty() && list.size() > 1) {
    server_name = list[0].substr(0, list[0].rfind(':'));
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(endpoints, std::move(target), timeout, *std::move(credentials),
                     std::move(server_name), security.user, security.password));
}

EtcdClient::EtcdClient(std::string endpoints, std::string target, absl::Duration timeout,
                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                       std::string server_name, std::string user, std::string password)
    : endpoints_(std::move(endpoints)),
      target_(std::move(target)),
      timeout_(timeout),
      credentials_(std::move(credentials)),
      server_name_(std::move(server_name)),
      user_(std::move(user)),
      password_(std::move(password)) {
  MutexLock lock(&mu_);
  connection_ = Connect();
}

std::shared_ptr<EtcdClient::Connection> EtcdClient::Connect() const {
  grpc::ChannelArguments args;
  // Our own connections, not ones shared with other channels to this target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Notice a dead etcd on an idle watch stream; etcd permits pings every 5 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  // Also the connect timeout.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto c = std::make_shared<Connection>();
  if (!server_name_.empty()) args.SetSslTargetNameOverride(server_name_);
  c->channel = grpc::CreateCustomChannel(target_, credentials_, args);
  c->kv = etcdserverpb::KV::NewStub(c->channel);
  c->lease = etcdserverpb::Lease::NewStub(c->channel);
  c->watch = etcdserverpb::Watch::NewStub(c->channel);
  c->auth = etcdserverpb::Auth::NewStub(c->channel);
  return c;
}

std::shared_ptr<EtcdClient::Connection> EtcdClient::connection() const {
  MutexLock lock(&mu_);
  return connection_;
}

void EtcdClient::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

absl::StatusOr<std::string> EtcdClient::LogIn() const {
  etcdserverpb::AuthenticateRequest req;
  req.set_name(user_);
  req.set_password(password_);
  etcdserverpb::AuthenticateResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (grpc::Status s = connection()->auth->Authenticate(&ctx, req, &resp); !s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("etcd login as ", user_, " at ", endpoints_, ": ",
                                     s.error_message()));
  }
  return resp.token();
}

absl::Status EtcdClient::AddToken(grpc::ClientContext* ctx) {
  if (user_.empty()) return absl::OkStatus();
  std::string token;
  {
    MutexLock lock(&mu_);
    token = token_;
  }
  if (token.empty()) {
    absl::StatusOr<std::string> fresh = LogIn();
    if (!fresh.ok()) return fresh.status();
    token = *std::move(fresh);
    MutexLock lock(&mu_);
    token_ = token;
  }
  ctx->AddMetadata("token", token);
  return absl::OkStatus();
}

grpc::Status EtcdClient::Call(const std::function<grpc::Status(grpc::ClientContext&)>& call) {
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    if (absl::Status added = AddToken(&ctx); !added.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(added.code()),
                          std::string(added.message()));
    }
    grpc::Status s = call(ctx);
    // etcd forgets simple tokens when it restarts, and after their TTL.
    const bool stale = s.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
                       absl::StrContains(s.error_message(), "invalid auth token");
    if (!stale || attempt > 0 || user_.empty()) return s;
    MutexLock lock(&mu_);
    token_.clear();
  }
}

absl::Status EtcdClient::Failed(const char* call, const grpc::Status& s,
                                const std::shared_ptr<Connection>& used) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::shared_ptr<Connection> fresh = Connect();
    MutexLock lock(&mu_);
    if (connection_ == used) connection_ = std::move(fresh);
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("etcd ", call, " at ", endpoints_, ": ", s.error_message()));
}

absl::StatusOr<EtcdRange> EtcdClient::RangePrefix(const std::string& prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  req.set_range_end(EtcdPrefixEnd(prefix));
  etcdserverpb::RangeResponse resp;
  const auto c = connection();
  if (grpc::Status s = Call([&](grpc::ClientContext& ctx) { return c->kv->Range(&ctx, req, &resp); });
      !s.ok()) {
    return Failed("Range", s, c);
  }
  EtcdRange range;
  range.revision = resp.header().revision();
  for (const auto& kv : resp.kvs())
    range.kvs.push_back({kv.key(), kv.value(), kv.mod_revision(), kv.lease()});
  return range;
}

absl::Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  etcdserverpb::PutResponse resp;
  const auto c = connection();
  if (grpc::Status s = Call([&](grpc::ClientContext& ctx) { return c->kv->Put(&ctx, req, &resp); });
      !s.ok()) {
    return Failed("Put", s, c);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EtcdClient::GrantLease(absl::Duration ttl) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  etcdserverpb::LeaseGrantResponse resp;
  const auto c = connection();
  if (grpc::Status s = Call(
          [&](grpc::ClientContext& ctx) { return c->lease->LeaseGrant(&ctx, req, &resp); });
      !s.ok()) {
    return Failed("LeaseGrant", s, c);
  }
  if (!resp.error().empty()) {
    return absl::UnavailableError(
        absl::StrCat("etcd LeaseGrant at ", endpoints_, ": ", resp.error()));
  }
  return resp.id();
}

absl::Status EtcdClient::RevokeLease(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseRevokeResponse resp;
  const auto c = connection();
  if (grpc::Status s = Call(
          [&](grpc::ClientContext& ctx) { return c->lease->LeaseRevoke(&ctx, req, &resp); });
      !s.ok()) {
    return Failed("LeaseRevoke", s, c);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> EtcdClient::KeepAliveOnce(int64_t lease) {
  // A stream per renewal: each gets a deadline, so a hung etcd cannot stall
  // the caller, and renewals are seconds apart, so the cost does not matter.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (absl::Status added = AddToken(&ctx); !added.ok()) return added;
  const auto c = connection();
  auto stream = c->lease->LeaseKeepAlive(&ctx);
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse resp;
  const bool answered = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  ctx.TryCancel();  // we read what we need; do not wait for the server's close
  grpc::Status s = stream->Finish();
  if (!answered) {
    // Whatever closed the stream (our cancel shows as CANCELLED), etcd did
    // not answer: a transport failure.
    const std::string why = s.ok() ? "stream closed without a reply" : s.error_message();
    return Failed("LeaseKeepAlive", grpc::Status(grpc::StatusCode::UNAVAILABLE, why), c);
  }
  if (resp.ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("etcd lease ", lease, " has expired"));
  }
  return absl::Seconds(resp.ttl());
}

}  // namespace kvcache
