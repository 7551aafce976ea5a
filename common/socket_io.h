// Whole-buffer reads and writes on blocking sockets, retrying on EINTR and
// short transfers. Writes never raise SIGPIPE (MSG_NOSIGNAL).
//
// Thread safety: stateless functions.
#ifndef KVCACHE_COMMON_SOCKET_IO_H_
#define KVCACHE_COMMON_SOCKET_IO_H_

#include <sys/uio.h>

#include <cstddef>

namespace kvcache {

// Reads exactly n bytes; false on EOF (errno 0), error or timeout (errno
// EAGAIN / EWOULDBLOCK when SO_RCVTIMEO passed).
bool ReadFull(int fd, void* buf, size_t n);

// Writes every byte of iov[0, count); false on error or timeout. Advances
// through partial writes by modifying `iov`.
bool WriteFullV(int fd, iovec* iov, size_t count);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_SOCKET_IO_H_
