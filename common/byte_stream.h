// A connected stream socket as the data port's two ends use it: whole reads
// and gathered writes, over plain TCP or over TLS (tls_stream.h). The socket
// keeps its own SO_RCVTIMEO / SO_SNDTIMEO, which bound every call either
// way, and errno says why a call failed as for the plain socket (EAGAIN: a
// timeout; 0: the peer closed).
//
// The plain stream reads small messages ahead: one recv takes a request's
// head and body (or a reply's frame and message) together, where reading
// them apart took two. Bulk payloads still go straight from the socket into
// the caller's memory.
//
// Thread safety: one thread at a time per stream.
#ifndef KVCACHE_COMMON_BYTE_STREAM_H_
#define KVCACHE_COMMON_BYTE_STREAM_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"

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
  // longer shows (read ahead), so polling the fd alone would wait for
  // nothing.
  virtual bool Buffered() const { return buffered_ > 0; }
  // The verified client certificate's common name (TLS with client
  // certificates), else "".
  virtual std::string PeerCommonName() const { return ""; }

  // The SO_RCVTIMEO of the reads that follow. The socket option is set only
  // when a read must wait on the socket, so a request whose bytes arrived
  // together costs no system call for it.
  void SetReadTimeout(absl::Duration timeout);

  // Returns once bytes are here to read (held, or shown by the socket), the
  // peer closed or failed, or `spin` has passed, whichever is first; it
  // reads nothing. A caller that expects a reply within microseconds spins
  // here before its blocking read, so the reply finds it running: on a VM a
  // sleeping thread's wake-up costs more than a small request's work.
  // Yields the CPU between looks, so a spinner never holds back a thread
  // that is ready on its CPU.
  void AwaitReadable(absl::Duration spin);

  // Waits up to `timeout` until bytes are held or the socket shows some (or
  // the peer closed or failed: the next read says which), reading nothing;
  // false on timeout (errno EAGAIN) or a signal (EINTR). Where AwaitBytes
  // sleeps in recv, this sleeps in poll for POLLIN alone: a reader asleep in
  // recv on a Unix stream socket is also woken whenever its peer takes in
  // what it sent (the kernel's write-space wake-up), and when both ends of a
  // same-host ping-pong share a CPU each such wake-up is two more context
  // switches (a 4 KiB lease fetch's round trip went from 47 us to 21 us).
  bool WaitReadable(absl::Duration timeout);

  // Waits, under the read timeout, until at least one byte is held (plain
  // stream: read ahead); false on EOF (errno 0), error or timeout (EAGAIN)
  // with nothing held. A server waits here between requests, so a quiet
  // connection's timeout is told apart from one that stalls mid-request.
  virtual bool AwaitBytes();

 protected:
  // Sets SO_RCVTIMEO to the wanted timeout if it is not so already.
  void ApplyReadTimeout();

 private:
  // Reads into the read-ahead buffer whatever has arrived (at least one
  // byte, waiting for it); false on EOF, error or timeout.
  bool Fill();

  static constexpr size_t kReadAheadBytes = 16 << 10;

  const int fd_;
  const bool owns_fd_;
  std::unique_ptr<char[]> read_ahead_;  // kReadAheadBytes, made on first use
  size_t offset_ = 0;    // first unread byte in read_ahead_
  size_t buffered_ = 0;  // unread bytes from offset_
  std::optional<absl::Duration> want_timeout_;  // none: leave the socket's as it is
  std::optional<absl::Duration> set_timeout_;   // none: not set by this stream
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_BYTE_STREAM_H_
