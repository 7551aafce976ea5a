#include "proto/local_message_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "kvcache/v1/local.pb.h"

namespace kvcache {
namespace {

// Reads one framed message from `fd`: its head word and body.
bool ReadMessage(int fd, uint32_t* word, std::string* body) {
  uint32_t head[2];
  if (recv(fd, head, sizeof(head), MSG_WAITALL) != sizeof(head)) return false;
  *word = head[0];
  body->resize(head[1]);
  return head[1] == 0 ||
         recv(fd, body->data(), head[1], MSG_WAITALL) == static_cast<ssize_t>(head[1]);
}

TEST(LocalMessageIoTest, MessagesAppendedAheadArriveFirstAndWhole) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::string ahead;
  for (uint64_t id : {5, 6}) {
    v1::LocalRelease release;
    release.set_lease_id(id);
    AppendLocalMessage(LocalMessage::kRelease, release, &ahead);
  }
  v1::FetchRequest request;
  request.set_namespace_("ns");
  ASSERT_TRUE(WriteLocalMessage(fds[0], LocalMessage::kFetchLease, request, 1, ahead));
  v1::LocalRelease empty;  // an empty body: the head alone
  ASSERT_TRUE(WriteLocalMessage(fds[0], LocalMessage::kRelease, empty));

  uint32_t word = 0;
  std::string body;
  for (uint64_t id : {5, 6}) {
    ASSERT_TRUE(ReadMessage(fds[1], &word, &body));
    EXPECT_EQ(LocalTypeOf(word), LocalMessage::kRelease);
    EXPECT_LT(LocalWaitingCpuOf(word), 0);
    v1::LocalRelease release;
    ASSERT_TRUE(release.ParseFromString(body));
    EXPECT_EQ(release.lease_id(), id);
  }
  ASSERT_TRUE(ReadMessage(fds[1], &word, &body));
  EXPECT_EQ(LocalTypeOf(word), LocalMessage::kFetchLease);
  EXPECT_EQ(LocalWaitingCpuOf(word), 1);
  v1::FetchRequest got;
  ASSERT_TRUE(got.ParseFromString(body));
  EXPECT_EQ(got.namespace_(), "ns");
  ASSERT_TRUE(ReadMessage(fds[1], &word, &body));
  EXPECT_EQ(LocalTypeOf(word), LocalMessage::kRelease);
  EXPECT_EQ(body, "");
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace kvcache
