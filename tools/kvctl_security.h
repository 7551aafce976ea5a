// kvctl's TLS and token flags (--tls_ca, --tls_cert, --tls_key,
// --tls_server_name, --token, --token_file), read once into the
// ChannelSecurity every one of its channels and clients uses.
#ifndef KVCACHE_TOOLS_KVCTL_SECURITY_H_
#define KVCACHE_TOOLS_KVCTL_SECURITY_H_

#include "absl/status/statusor.h"
#include "common/channel_security.h"

namespace kvcache {

// INVALID_ARGUMENT for a token file that cannot be read.
absl::StatusOr<ChannelSecurity> SecurityFromFlags();

// etcd's (--etcd_tls_ca, --etcd_tls_cert, --etcd_tls_key, --etcd_user,
// --etcd_password_file). INVALID_ARGUMENT for a password file that cannot
// be read, or a user without one.
absl::StatusOr<ChannelSecurity> EtcdSecurityFromFlags();

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVCTL_SECURITY_H_
