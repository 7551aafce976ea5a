#include "common/byte_stream.h"

#include <unistd.h>

#include "common/socket_io.h"

namespace kvcache {

ByteStream::~ByteStream() {
  if (owns_fd_) close(fd_);
}

bool ByteStream::ReadFull(void* buf, size_t n) { return kvcache::ReadFull(fd_, buf, n); }

bool ByteStream::WriteFullV(iovec* iov, size_t count) {
  return kvcache::WriteFullV(fd_, iov, count);
}

}  // namespace kvcache
