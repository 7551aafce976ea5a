#include "client/etcd/etcd_client.h"

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
                                                               absl::Duration timeout) {
  std::vector<std::string> list = absl::StrSplit(endpoints, ',', absl::SkipWhitespace());
  if (list.empty()) return absl::InvalidArgumentError("etcd: no endpoint given");
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd: the call timeout must be positive");
  }
  // gRPC's ipv4: scheme takes a list and picks the first that connects.
  const std::string target = list.size() == 1 ? list[0] : "ipv4:" + absl::StrJoin(list, ",");
  grpc::ChannelArguments args;
  // Notice a dead etcd on an idle watch stream; etcd permits pings every 5 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  // Also the connect timeout: a connection etcd accepted but does not serve
  // yet (it listens before it is ready) is given up and retried after this.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<EtcdClient>(new EtcdClient(endpoints, timeout, std::move(channel)));
}

EtcdClient::EtcdClient(std::string endpoints, absl::Duration timeout,
                       std::shared_ptr<grpc::Channel> channel)
    : endpoints_(std::move(endpoints)),
      timeout_(timeout),
      channel_(std::move(channel)),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      watch_(etcdserverpb::Watch::NewStub(channel_)) {}

void EtcdClient::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

absl::Status EtcdClient::Failed(const char* call, const grpc::Status& s) const {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("etcd ", call, " at ", endpoints_, ": ", s.error_message()));
}

absl::StatusOr<EtcdRange> EtcdClient::RangePrefix(const std::string& prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  req.set_range_end(EtcdPrefixEnd(prefix));
  etcdserverpb::RangeResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (grpc::Status s = kv_->Range(&ctx, req, &resp); !s.ok()) return Failed("Range", s);
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
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (grpc::Status s = kv_->Put(&ctx, req, &resp); !s.ok()) return Failed("Put", s);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EtcdClient::GrantLease(absl::Duration ttl) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  etcdserverpb::LeaseGrantResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (grpc::Status s = lease_->LeaseGrant(&ctx, req, &resp); !s.ok()) {
    return Failed("LeaseGrant", s);
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
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (grpc::Status s = lease_->LeaseRevoke(&ctx, req, &resp); !s.ok()) {
    return Failed("LeaseRevoke", s);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> EtcdClient::KeepAliveOnce(int64_t lease) {
  // A stream per renewal: each gets a deadline, so a hung etcd cannot stall
  // the caller, and renewals are seconds apart, so the cost does not matter.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto stream = lease_->LeaseKeepAlive(&ctx);
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse resp;
  const bool answered = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  ctx.TryCancel();  // we read what we need; do not wait for the server's close
  grpc::Status s = stream->Finish();
  if (!answered) {
    return Failed(
        "LeaseKeepAlive",
        s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed without a reply") : s);
  }
  if (resp.ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("etcd lease ", lease, " has expired"));
  }
  return absl::Seconds(resp.ttl());
}

}  // namespace kvcache
