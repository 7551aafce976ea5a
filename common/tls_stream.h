// TLS over a connected socket with OpenSSL (Debian's libssl): the data
// port's encryption, beside gRPC's own. A TlsContext holds the certificates;
// Accept and Connect handshake on a socket and return it as a ByteStream.
// TLS 1.3 only, AES-128-GCM first (AES-NI makes it the fastest suite here).
//
// Thread safety: a TlsContext may be shared by any number of threads; each
// stream is used by one thread at a time.
#ifndef KVCACHE_COMMON_TLS_STREAM_H_
#define KVCACHE_COMMON_TLS_STREAM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/byte_stream.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace kvcache {

class TlsContext {
 public:
  // A server's: its certificate chain and key (PEM files), and with
  // `client_ca` a demand for a client certificate that CA signed.
  // INVALID_ARGUMENT naming the file that does not load.
  static absl::StatusOr<std::shared_ptr<TlsContext>> ForServer(const std::string& cert,
                                                                const std::string& key,
                                                                const std::string& client_ca);
  // A client's: the CAs to check the server against, and optionally its own
  // certificate and key.
  static absl::StatusOr<std::shared_ptr<TlsContext>> ForClient(const std::string& ca,
                                                                const std::string& cert,
                                                                const std::string& key);
  ~TlsContext();

  // Handshakes as the server on `fd`, which stays the caller's to close
  // (the stream never closes it). The socket's timeouts bound the
  // handshake. UNAVAILABLE with OpenSSL's reason (a plaintext client, an
  // unknown CA, an expired certificate).
  absl::StatusOr<std::unique_ptr<ByteStream>> Accept(int fd) const;
  // Handshakes as the client on `fd` (taken: the stream closes it, and so
  // does a failure), checking that the server's
  // certificate names `server_name` (a DNS name or an IP literal).
  absl::StatusOr<std::unique_ptr<ByteStream>> Connect(int fd, const std::string& server_name) const;

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* const ctx_;
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_TLS_STREAM_H_
