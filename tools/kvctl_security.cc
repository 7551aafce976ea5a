#include "tools/kvctl_security.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates to check the daemon's TLS certificate against; turns TLS on.");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate, for a daemon that wants one (mTLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the daemon's certificate must carry when it is not --server's host.");
ABSL_FLAG(std::string, token, "",
          "Bearer token (kvstored --token_file maps it to a tenant and role). Prefer "
          "--token_file: a command line is visible to other users of the host.");
ABSL_FLAG(std::string, token_file, "", "File whose first line is the bearer token.");
ABSL_FLAG(std::string, etcd_tls_ca, "", "With --etcd: PEM CA of etcd's certificate (TLS).");
ABSL_FLAG(std::string, etcd_tls_cert, "", "With --etcd: PEM client certificate for etcd.");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key of --etcd_tls_cert.");
ABSL_FLAG(std::string, etcd_user, "",
          "With --etcd: the etcd user to log in as (etcd's authentication on), with "
          "--etcd_password_file.");
ABSL_FLAG(std::string, etcd_password_file, "", "File whose first line is --etcd_user's password.");

namespace kvcache {

absl::StatusOr<ChannelSecurity> SecurityFromFlags() {
  ChannelSecurity security;
  security.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  security.tls_key = absl::GetFlag(FLAGS_tls_key);
  security.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::string> token =
      TokenFromFlags(absl::GetFlag(FLAGS_token), absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return token.status();
  security.token = *std::move(token);
  return security;
}

absl::StatusOr<ChannelSecurity> EtcdSecurityFromFlags() {
  ChannelSecurity security;
  security.tls_ca = absl::GetFlag(FLAGS_etcd_tls_ca);
  security.tls_cert = absl::GetFlag(FLAGS_etcd_tls_cert);
  security.tls_key = absl::GetFlag(FLAGS_etcd_tls_key);
  absl::StatusOr<std::string> password =
      EtcdLoginFromFlags(absl::GetFlag(FLAGS_etcd_user), absl::GetFlag(FLAGS_etcd_password_file));
  if (!password.ok()) return password.status();
  security.user = absl::GetFlag(FLAGS_etcd_user);
  security.password = *std::move(password);
  return security;
}

}  // namespace kvcache
