// A small client of etcd's v3 gRPC API (proto/etcd/etcd_v3.proto): the calls
// cluster membership needs, each with a deadline, errors as absl::Status.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_MEMBERSHIP_ETCD_CLIENT_H_
#define KVCACHE_MEMBERSHIP_ETCD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/channel_security.h"
#include "common/mutex.h"
#include "etcd/etcd_v3.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace kvcache {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
  int64_t lease = 0;  // 0: none
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;  // in key order
  int64_t revision = 0;           // the store's revision the range was read at
};

// The end of the key range holding every key that starts with `prefix`
// (etcd's convention: the prefix with its last byte below 0xff incremented).
std::string EtcdPrefixEnd(const std::string& prefix);

class EtcdClient {
 public:
  // `endpoints`: "host:port", or several IPv4 "a.b.c.d:port" separated by
  // commas (calls go to the first that answers). INVALID_ARGUMENT when empty.
  // Connects lazily: an unreachable etcd shows as UNAVAILABLE on calls.
  // `security`: TLS to etcd (its CA) and a client certificate, for an etcd
  // started with --cert-file/--key-file (and --client-cert-auth); the
  // default is plaintext. With `security.user`, calls log in as that user
  // (etcd's authentication on): the token etcd returns goes with every
  // call, and a call refused for a stale token (etcd restarted, or the
  // token expired) logs in again and is retried once. INVALID_ARGUMENT for
  // PEM files that do not load, or a password for plaintext to another host.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(const std::string& endpoints,
                                                            absl::Duration timeout,
                                                            const ChannelSecurity& security = {});

  const std::string& endpoints() const { return endpoints_; }
  absl::Duration timeout() const { return timeout_; }

  // Every key under `prefix`, with the revision it was read at.
  absl::StatusOr<EtcdRange> RangePrefix(const std::string& prefix);
  // Writes key = value, attached to `lease` (0: none).
  absl::Status Put(const std::string& key, const std::string& value, int64_t lease);
  // A new lease of `ttl` (whole seconds, at least 1); returns its id.
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl);
  // Ends a lease now; its keys are deleted.
  absl::Status RevokeLease(int64_t lease);
  // Renews a lease once. Returns its new TTL; NOT_FOUND when etcd no longer
  // has it (expired or revoked: its keys are gone).
  absl::StatusOr<absl::Duration> KeepAliveOnce(int64_t lease);

  // For long-lived Watch streams, which take no deadline. The stub keeps its
  // channel alive while the caller holds it.
  std::shared_ptr<etcdserverpb::Watch::Stub> watch_stub() const { return connection()->watch; }
  // Adds the login token to the context of a stream the caller opens,
  // logging in first if there is none. OK without a user; the login's error
  // otherwise (UNAUTHENTICATED for a wrong user or password).
  absl::Status AddToken(grpc::ClientContext* ctx) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One channel and its stubs. Replaced whole after a transport failure: a
  // channel that saw etcd go away kept failing its connection attempts for
  // 10 s and more after etcd was back (etcd 3.4 accepts connections before
  // it serves them), while a fresh channel connected at once.
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::shared_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  };

  EtcdClient(std::string endpoints, std::string target, absl::Duration timeout,
             std::shared_ptr<grpc::ChannelCredentials> credentials, std::string server_name,
             std::string user, std::string password);
  std::shared_ptr<Connection> Connect() const;
  std::shared_ptr<Connection> connection() const ABSL_LOCKS_EXCLUDED(mu_);
  void SetDeadline(grpc::ClientContext* ctx) const;
  // Runs one unary call, `call(ctx)`, with a deadline and the login token,
  // retrying once with a fresh login if etcd calls the token stale.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext&)>& call)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The token of a login now (etcd's Authenticate).
  absl::StatusOr<std::string> LogIn() const;
  // The call's error; after a transport failure the next call uses a fresh
  // connection instead of `used`.
  absl::Status Failed(const char* call, const grpc::Status& s,
                      const std::shared_ptr<Connection>& used) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string endpoints_;
  const std::string target_;  // what gRPC dials
  const absl::Duration timeout_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const std::string server_name_;  // the name etcd's certificate must carry ("": the target's)
  const std::string user_, password_;  // "" user: etcd's authentication is off
  mutable Mutex mu_;
  std::shared_ptr<Connection> connection_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);  // of the last login; "" before one
};

}  // namespace kvcache

#endif  // KVCACHE_MEMBERSHIP_ETCD_CLIENT_H_
