// Test helper: connects to a daemon's local socket, takes a fetch lease on
// one block and a put lease on a new one, prints "HOLDING", and sleeps until
// killed. Usage: lease_holder SOCKET NAMESPACE FETCH_KEY_HEX PUT_BYTES
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "key/block_key.h"
#include "common/socket_io.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"

namespace {

bool Send(int fd, kvcache::LocalMessage type, const google::protobuf::Message& m) {
  const std::string body = m.SerializeAsString();
  uint32_t head[2] = {static_cast<uint32_t>(type), static_cast<uint32_t>(body.size())};
  iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(body.data()), body.size()}};
  return kvcache::WriteFullV(fd, iov, 2);
}

bool Read(int fd, google::protobuf::Message* m) {
  uint32_t head[2];
  if (!kvcache::ReadFull(fd, head, sizeof(head))) return false;
  std::string body(head[1], '\0');
  return kvcache::ReadFull(fd, body.data(), body.size()) && m->ParseFromString(body);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, argv[1], sizeof(addr.sun_path) - 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 3;
  kvcache::v1::LocalWelcome welcome;  // the arena fd is not needed here
  if (!Read(fd, &welcome)) return 4;

  kvcache::v1::FetchRequest fetch;
  fetch.set_namespace_(argv[2]);
  fetch.add_items()->set_key(kvcache::BlockKey::FromHex(argv[3])->ToBytes());
  kvcache::v1::LocalLease fetch_lease;
  if (!Send(fd, kvcache::LocalMessage::kFetchLease, fetch) || !Read(fd, &fetch_lease) ||
      fetch_lease.lease_id() == 0) {
    return 5;
  }
  kvcache::v1::PutBlockHeader put;
  put.set_namespace_(argv[2]);
  put.set_key(std::string(32, 'h'));
  put.set_size(std::strtoull(argv[4], nullptr, 10));
  kvcache::v1::LocalLease put_lease;
  if (!Send(fd, kvcache::LocalMessage::kPutBegin, put) || !Read(fd, &put_lease) ||
      put_lease.lease_id() == 0) {
    return 6;
  }
  std::printf("HOLDING\n");
  std::fflush(stdout);
  while (true) pause();
}
