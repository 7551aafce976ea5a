#include "proto/local_message_io.h"

#include <sys/uio.h>

#include <cstdint>
#include <string>

#include "common/socket_io.h"

namespace kvcache {

bool WriteLocalMessage(int fd, LocalMessage type, const google::protobuf::Message& body,
                       int waiting_cpu, absl::string_view ahead) {
  const std::string bytes = body.SerializeAsString();
  uint32_t head[2] = {LocalTypeWord(type, waiting_cpu), static_cast<uint32_t>(bytes.size())};
  iovec iov[3];
  size_t count = 0;
  if (!ahead.empty()) iov[count++] = {const_cast<char*>(ahead.data()), ahead.size()};
  iov[count++] = {head, sizeof(head)};
  if (!bytes.empty()) iov[count++] = {const_cast<char*>(bytes.data()), bytes.size()};
  return WriteFullV(fd, iov, count);
}

void AppendLocalMessage(LocalMessage type, const google::protobuf::Message& body,
                        std::string* out) {
  const size_t size = body.ByteSizeLong();
  const uint32_t head[2] = {LocalTypeWord(type, -1), static_cast<uint32_t>(size)};
  out->append(reinterpret_cast<const char*>(head), sizeof(head));
  const size_t at = out->size();
  out->resize(at + size);
  body.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out->data() + at));
}

}  // namespace kvcache
