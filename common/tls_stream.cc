#include "common/tls_stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

constexpr char kSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// Writes smaller than a TLS record are gathered into one record.
constexpr size_t kRecord = 16 << 10;

std::string OpenSslError(const char* what) {
  char text[256] = "no detail";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, text, sizeof(text));
  ERR_clear_error();
  return absl::StrCat(what, ": ", text);
}

// A socket BIO that sends with MSG_NOSIGNAL (a client library must not
// raise SIGPIPE in its host process when a daemon goes away) and retries
// EINTR itself; EAGAIN (the socket's timeout) is an error, as on the plain
// socket.
int SocketWrite(BIO* bio, const char* data, int len) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  ssize_t w;
  do {
    w = send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  return static_cast<int>(w);
}

int SocketRead(BIO* bio, char* data, int len) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
  ssize_t r;
  do {
    r = recv(fd, data, static_cast<size_t>(len), 0);
  } while (r < 0 && errno == EINTR);
  if (r == 0) errno = 0;
  return static_cast<int>(r);
}

long SocketCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

BIO_METHOD* SocketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kvcache socket");
    BIO_meth_set_write(m, SocketWrite);
    BIO_meth_set_read(m, SocketRead);
    BIO_meth_set_ctrl(m, SocketCtrl);
    return m;
  }();
  return method;
}

SSL* NewSsl(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  BIO* bio = BIO_new(SocketMethod());
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);
  return ssl;
}

class TlsStream final : public ByteStream {
 public:
  TlsStream(int fd, bool owns_fd, SSL* ssl) : ByteStream(fd, owns_fd), ssl_(ssl) {
    pending_.reserve(kRecord);
  }
  ~TlsStream() override { SSL_free(ssl_); }

  bool ReadFull(void* buf, size_t n) override {
    ApplyReadTimeout();  // SSL_read may wait on the socket even with bytes held
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      const int r = SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
      if (r <= 0) return Failed(r);
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

  bool WriteFullV(iovec* iov, size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      size_t n = iov[i].iov_len;
      // Top up the gathered record first, so small pieces never go alone.
      const size_t take = std::min(n, kRecord - pending_.size());
      if (take < n || pending_.size() + take < kRecord) {
        pending_.append(reinterpret_cast<const char*>(p), take);
        p += take;
        n -= take;
      }
      if (n == 0 && pending_.size() < kRecord) continue;
      if (!Flush()) return false;
      if (n > 0 && !WriteAll(p, n)) return false;
    }
    return Flush();
  }

  bool Buffered() const override { return SSL_has_pending(ssl_) == 1; }

  bool AwaitBytes() override {
    ApplyReadTimeout();
    char byte;
    const int r = SSL_peek(ssl_, &byte, 1);
    return r > 0 || Failed(r);
  }

  std::string PeerCommonName() const override {
    X509* peer = SSL_get0_peer_certificate(ssl_);
    if (peer == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return "";
    char cn[256] = {};
    const int len =
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    return len > 0 ? std::string(cn, static_cast<size_t>(len)) : "";
  }

 private:
  bool Flush() {
    if (pending_.empty()) return true;
    const bool ok = WriteAll(reinterpret_cast<const uint8_t*>(pending_.data()), pending_.size());
    pending_.clear();
    return ok;
  }

  bool WriteAll(const uint8_t* p, size_t n) {
    while (n > 0) {
      const int w = SSL_write(ssl_, p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      if (w <= 0) return Failed(w);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  // After SSL_read or SSL_write returned `r`: errno as the plain socket
  // would leave it (0 for a closed peer), OpenSSL's queue cleared.
  bool Failed(int r) {
    const int saved = errno;
    const int error = SSL_get_error(ssl_, r);
    ERR_clear_error();
    errno = error == SSL_ERROR_ZERO_RETURN ? 0 : (saved == 0 ? EPIPE : saved);
    if (error == SSL_ERROR_SSL) errno = EPROTO;
    return false;
  }

  SSL* const ssl_;
  std::string pending_;
};

SSL_CTX* NewContext(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(ctx, kSuites);
  // Read whole records (and more) per recv: fewer system calls per block.
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

absl::Status LoadIdentity(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return absl::InvalidArgumentError(OpenSslError(cert.c_str()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(OpenSslError(key.c_str()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForServer(const std::string& cert,
                                                                   const std::string& key,
                                                                   const std::string& client_ca) {
  SSL_CTX* ctx = NewContext(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslError("SSL_CTX_new"));
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  if (absl::Status s = LoadIdentity(ctx, cert, key); !s.ok()) return s;
  // No session tickets: connections are long-lived and pooled.
  SSL_CTX_set_num_tickets(ctx, 0);
  if (!client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(OpenSslError(client_ca.c_str()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return context;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForClient(const std::string& ca,
                                                                   const std::string& cert,
                                                                   const std::string& key) {
  SSL_CTX* ctx = NewContext(TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslError("SSL_CTX_new"));
  std::shared_ptr<TlsContext> context(new TlsContext(ctx));
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(OpenSslError(ca.c_str()));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    if (absl::Status s = LoadIdentity(ctx, cert, key); !s.ok()) return s;
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::unique_ptr<ByteStream>> TlsContext::Accept(int fd) const {
  SSL* ssl = NewSsl(ctx_, fd);
  if (ssl == nullptr || SSL_accept(ssl) != 1) {
    const std::string why = OpenSslError("TLS handshake");
    SSL_free(ssl);
    return absl::UnavailableError(why);
  }
  return std::unique_ptr<ByteStream>(new TlsStream(fd, /*owns_fd=*/false, ssl));
}

absl::StatusOr<std::unique_ptr<ByteStream>> TlsContext::Connect(
    int fd, const std::string& server_name) const {
  SSL* ssl = NewSsl(ctx_, fd);
  bool named = ssl != nullptr;
  if (named) {
    in6_addr ip;
    const bool literal = inet_pton(AF_INET, server_name.c_str(), &ip) == 1 ||
                         inet_pton(AF_INET6, server_name.c_str(), &ip) == 1;
    named = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str()) == 1
                    : SSL_set1_host(ssl, server_name.c_str()) == 1 &&
                          SSL_set_tlsext_host_name(ssl, server_name.c_str()) == 1;
  }
  if (!named || SSL_connect(ssl) != 1) {
    const std::string why = OpenSslError("TLS handshake");
    SSL_free(ssl);
    close(fd);
    return absl::UnavailableError(why);
  }
  return std::unique_ptr<ByteStream>(new TlsStream(fd, /*owns_fd=*/true, ssl));
}

}  // namespace kvcache
