// A connected stream socket as the data port's two ends use it: whole reads
// and gathered writes, over plain TCP or over TLS (tls_stream.h). The socket
// keeps its own SO_RCVTIMEO / SO_SNDTIMEO, which bound every call either
// way, and errno says why a call failed as for the plain socket (EAGAIN: a
// timeout; 0: the peer closed).
//
// Thread safety: one thread at a time per stream.
#ifndef KVCACHE_COMMON_BYTE_STREAM_H_
#define KVCACHE_COMMON_BYTE_STREAM_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string>

namespace kvcache {

class ByteStream {
 public:
  // The destructor closes `fd` if `owns_fd` (a server whose connection
  // threads close their sockets themselves passes false).
  explicit ByteStream(int fd, bool owns_fd = true) : fd_(fd), owns_fd_(owns_fd) {}
  virtual ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  int fd() const { return fd_; }
  // Reads exactly n bytes; false on EOF, error or timeout.
  virtual bool ReadFull(void* buf, size_t n);
  // Writes every byte of iov[0, count) (modifying `iov`); false on error or
  // timeout.
  virtual bool WriteFullV(iovec* iov, size_t count);
  // Whether bytes already arrived that this stream holds and the socket no
  // longer shows (TLS reads whole records ahead), so polling the fd alone
  // would wait for nothing.
  virtual bool Buffered() const { return false; }
  // The verified client certificate's common name (TLS with client
  // certificates), else "".
  virtual std::string PeerCommonName() const { return ""; }

 private:
  const int fd_;
  const bool owns_fd_;
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_BYTE_STREAM_H_
