// How a client proves itself to a daemon and checks it is talking to the
// right one: TLS (with a client certificate for mutual TLS) and a bearer
// token. Every gRPC channel the client library, kvctl, kvbench and the etcd
// client open is made here, so each speaks to a secured server the same way.
//
// Thread safety: free functions; a channel made here is thread-safe.
#ifndef KVCACHE_COMMON_CHANNEL_SECURITY_H_
#define KVCACHE_COMMON_CHANNEL_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace kvcache {

struct ChannelSecurity {
  // PEM CA certificates the daemon's certificate must chain to; set: TLS.
  std::string tls_ca;
  // PEM client certificate and key, for a daemon that asks for one.
  std::string tls_cert;
  std::string tls_key;
  // The name the daemon's certificate must carry, when it is not the host
  // of the address (an IP address dialled, a test's certificate).
  std::string tls_server_name;
  // Sent as "authorization: Bearer <token>" on every call.
  std::string token;
  // Acts in this tenant instead of the token's (kvActForTenantHeader on
  // gRPC, the auth frame on the data port). Only an admin identity may:
  // replica repair copies each tenant's blocks in that tenant. Empty: the
  // token's own tenant.
  std::string act_for_tenant;
  // etcd only: the user and password to log in with, for an etcd whose
  // authentication is on (etcd's Authenticate; EtcdClient sends the token
  // it returns with every call). Empty user: no login.
  std::string user;
  std::string password;

  bool tls() const { return !tls_ca.empty(); }
};

// The call metadata naming the tenant an admin acts for.
inline constexpr char kActForTenantHeader[] = "kvcache-tenant";

// Whether `address` (host:port, unix:path, a gRPC ipv4: target) stays on
// this host: where a daemon may listen, and a client may send a token,
// without TLS.
bool IsLoopback(const std::string& address);

// A token as kvctl and tools take it: `token` itself, else the first line of
// `token_file` (whitespace trimmed), else "". INVALID_ARGUMENT if the file
// cannot be read or holds no token.
absl::StatusOr<std::string> TokenFromFlags(const std::string& token,
                                           const std::string& token_file);
// An etcd login's password from --etcd_password_file: "" without a user;
// INVALID_ARGUMENT for a user without a password file, or a file that
// cannot be read.
absl::StatusOr<std::string> EtcdLoginFromFlags(const std::string& user,
                                               const std::string& password_file);
// The first line of `path` (whitespace trimmed): a secret kept in a file.
// INVALID_ARGUMENT naming `flag` if it cannot be read or is empty.
absl::StatusOr<std::string> FirstLineOf(const std::string& path, const std::string& flag);

// The credentials MakeChannel uses (no token: that rides on the channel).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const std::string& address, const ChannelSecurity& security);

// A channel to `address` secured as `security` says, with `args`. Reads the
// PEM files now. INVALID_ARGUMENT for a file that cannot be read, a client
// certificate without TLS, or a token that would cross the network in the
// clear (a non-loopback address without TLS).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const ChannelSecurity& security,
                                                           grpc::ChannelArguments args = {});

}  // namespace kvcache

#endif  // KVCACHE_COMMON_CHANNEL_SECURITY_H_
