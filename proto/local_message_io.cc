#include "proto/local_message_io.h"

#include <sys/uio.h>

#include <cstdint>
#include <string>

#include "common/socket_io.h"

namespace kvcache {

bool WriteLocalMessage(int fd, LocalMessage type, const google::protobuf::Message& body,
                       int waiting_cpu) {
  const std::string bytes = body.SerializeAsString();
  uint32_t head[2] = {LocalTypeWord(type, waiting_cpu), static_cast<uint32_t>(bytes.size())};
  iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(bytes.data()), bytes.size()}};
  return WriteFullV(fd, iov, bytes.empty() ? 1 : 2);
}

}  // namespace kvcache
