#include "common/byte_stream.h"

#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/time/clock.h"
#include "common/socket_io.h"

namespace kvcache {

ByteStream::~ByteStream() {
  if (owns_fd_) close(fd_);
}

void ByteStream::SetReadTimeout(absl::Duration timeout) { want_timeout_ = timeout; }

void ByteStream::ApplyReadTimeout() {
  if (!want_timeout_.has_value() || set_timeout_ == want_timeout_) return;
  const timeval tv = absl::ToTimeval(*want_timeout_);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0) set_timeout_ = want_timeout_;
}

bool ByteStream::Fill() {
  if (read_ahead_ == nullptr) read_ahead_ = std::make_unique<char[]>(kReadAheadBytes);
  ApplyReadTimeout();
  ssize_t r;
  do {
    r = recv(fd_, read_ahead_.get(), kReadAheadBytes, 0);
  } while (r < 0 && errno == EINTR);
  if (r == 0) errno = 0;  // the peer closed: not a stale errno's reason
  if (r <= 0) return false;
  offset_ = 0;
  buffered_ = static_cast<size_t>(r);
  return true;
}

bool ByteStream::ReadFull(void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    if (buffered_ > 0) {
      const size_t take = std::min(n, buffered_);
      std::memcpy(p, read_ahead_.get() + offset_, take);
      offset_ += take;
      buffered_ -= take;
      p += take;
      n -= take;
      continue;
    }
    // A payload goes straight into `buf`: no copy through the buffer.
    if (n >= kReadAheadBytes / 2) {
      ApplyReadTimeout();
      return kvcache::ReadFull(fd_, p, n);
    }
    if (!Fill()) return false;
  }
  return true;
}

bool ByteStream::WriteFullV(iovec* iov, size_t count) {
  return kvcache::WriteFullV(fd_, iov, count);
}

bool ByteStream::WaitReadable(absl::Duration timeout) {
  if (Buffered()) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  // Rounded up, so a short timeout still waits rather than spins.
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  const int r = poll(&p, 1, static_cast<int>(std::clamp<int64_t>(ms, 0, INT32_MAX)));
  if (r > 0) return true;
  if (r == 0) errno = EAGAIN;
  return false;
}

bool ByteStream::AwaitBytes() { return Buffered() || Fill(); }

void ByteStream::AwaitReadable(absl::Duration spin) {
  if (spin <= absl::ZeroDuration()) return;
  const absl::Time until = absl::Now() + spin;
  char byte;
  while (!Buffered()) {
    const ssize_t r = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
    if (absl::Now() >= until) return;
    sched_yield();
  }
}

}  // namespace kvcache
