#include "common/byte_stream.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kvcache {
namespace {

// A connected pair: the stream under test reads `reader`; the test writes
// `writer` with plain system calls.
class ByteStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    reader_ = fds[0];
    writer_ = fds[1];
  }
  void TearDown() override {
    if (writer_ >= 0) close(writer_);
  }
  void Send(const std::string& bytes) {
    ASSERT_EQ(write(writer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  // SO_RCVTIMEO as the kernel keeps it: in clock ticks, so rounded to
  // whole milliseconds of 10.
  absl::Duration SocketReadTimeout() const {
    timeval tv{};
    socklen_t len = sizeof(tv);
    getsockopt(reader_, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    return absl::Floor(absl::DurationFromTimeval(tv), absl::Milliseconds(10));
  }

  int reader_ = -1;
  int writer_ = -1;
};

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

TEST_F(ByteStreamTest, HeadAndBodySentTogetherAreReadInOrderAndHeld) {
  ByteStream stream(reader_);
  const std::string head = "HEAD0001";
  const std::string body = Pattern(300, 1);
  Send(head + body);
  std::string got(head.size(), '\0');
  ASSERT_TRUE(stream.ReadFull(got.data(), got.size()));
  EXPECT_EQ(got, head);
  EXPECT_TRUE(stream.Buffered()) << "the body came with the head in one read";
  got.assign(body.size(), '\0');
  ASSERT_TRUE(stream.ReadFull(got.data(), got.size()));
  EXPECT_EQ(got, body);
  EXPECT_FALSE(stream.Buffered());
}

TEST_F(ByteStreamTest, PayloadAfterASmallFrameArrivesWholePartlyFromTheReadAhead) {
  ByteStream stream(reader_);
  const std::string frame = Pattern(12, 2);
  const std::string payload = Pattern(1 << 20, 3);  // over the read-ahead, read straight
  const std::string next = Pattern(20, 4);
  std::thread writer([&] { Send(frame + payload + next); });
  std::string got(frame.size(), '\0');
  ASSERT_TRUE(stream.ReadFull(got.data(), got.size()));
  EXPECT_EQ(got, frame);
  got.assign(payload.size(), '\0');
  ASSERT_TRUE(stream.ReadFull(got.data(), got.size()));
  EXPECT_TRUE(got == payload);
  got.assign(next.size(), '\0');
  ASSERT_TRUE(stream.ReadFull(got.data(), got.size()));
  EXPECT_EQ(got, next);
  writer.join();
}

TEST_F(ByteStreamTest, ManySmallReadsOfOneLongMessage) {
  ByteStream stream(reader_);
  const std::string message = Pattern(100000, 5);
  std::thread writer([&] { Send(message); });
  std::string got;
  for (size_t at = 0; at < message.size();) {
    const size_t n = std::min<size_t>(message.size() - at, 1 + (at % 977));
    std::string piece(n, '\0');
    ASSERT_TRUE(stream.ReadFull(piece.data(), n)) << "at " << at;
    got += piece;
    at += n;
  }
  EXPECT_TRUE(got == message);
  writer.join();
}

TEST_F(ByteStreamTest, EndOfStreamSaysSoWithErrnoZero) {
  ByteStream stream(reader_);
  Send("abc");
  close(writer_);
  writer_ = -1;
  char buf[8];
  errno = EINVAL;
  EXPECT_FALSE(stream.ReadFull(buf, sizeof(buf)));
  EXPECT_EQ(errno, 0);
}

TEST_F(ByteStreamTest, ReadTimeoutIsSetOnlyWhenAReadMustWait) {
  ByteStream stream(reader_);
  stream.SetReadTimeout(absl::Milliseconds(100));
  EXPECT_EQ(SocketReadTimeout(), absl::ZeroDuration()) << "nothing was read yet";
  Send("12345678abcd");
  char buf[8];
  ASSERT_TRUE(stream.ReadFull(buf, 8));
  EXPECT_EQ(SocketReadTimeout(), absl::Milliseconds(100)) << "the first read waited on the socket";
  // The rest is held: reading it under another timeout waits on nothing,
  // so the socket keeps the old one.
  stream.SetReadTimeout(absl::Milliseconds(300));
  ASSERT_TRUE(stream.ReadFull(buf, 4));
  EXPECT_EQ(SocketReadTimeout(), absl::Milliseconds(100));
  // Nothing is here now: the read waits, under the new timeout, and times out.
  const absl::Time start = absl::Now();
  errno = 0;
  EXPECT_FALSE(stream.ReadFull(buf, 1));
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(SocketReadTimeout(), absl::Milliseconds(300));
}

TEST_F(ByteStreamTest, AwaitBytesTellsAQuietTimeoutFromBytesAndFromTheEnd) {
  ByteStream stream(reader_);
  stream.SetReadTimeout(absl::Milliseconds(100));
  errno = 0;
  EXPECT_FALSE(stream.AwaitBytes()) << "nothing came within the timeout";
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
  Send("ab");
  ASSERT_TRUE(stream.AwaitBytes());
  EXPECT_TRUE(stream.Buffered());
  EXPECT_TRUE(stream.AwaitBytes()) << "held bytes need no wait";
  char buf[2];
  ASSERT_TRUE(stream.ReadFull(buf, 2));
  EXPECT_EQ(std::string(buf, 2), "ab");
  close(writer_);
  writer_ = -1;
  errno = EINVAL;
  EXPECT_FALSE(stream.AwaitBytes());
  EXPECT_EQ(errno, 0) << "the peer closed";
}

TEST_F(ByteStreamTest, WaitReadableWakesForBytesAndTheEndButNotForThePeerReading) {
  ByteStream stream(reader_);
  // The peer takes in what this end sent while it waits: still a timeout.
  ASSERT_EQ(write(reader_, "out", 3), 3);
  std::thread peer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    char got[3];
    ASSERT_EQ(read(writer_, got, 3), 3);
  });
  errno = 0;
  absl::Time start = absl::Now();
  EXPECT_FALSE(stream.WaitReadable(absl::Milliseconds(150)));
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  peer.join();
  // Bytes arrive: it returns with them unread, and held ones need no wait.
  std::thread sender([&] {
    absl::SleepFor(absl::Milliseconds(5));
    Send("ab");
  });
  EXPECT_TRUE(stream.WaitReadable(absl::Seconds(30)));
  sender.join();
  char c = 0;
  ASSERT_TRUE(stream.ReadFull(&c, 1));
  EXPECT_EQ(c, 'a');
  EXPECT_TRUE(stream.WaitReadable(absl::ZeroDuration())) << "'b' is held";
  ASSERT_TRUE(stream.ReadFull(&c, 1));
  // The peer closes: it returns at once, and the read then says so.
  close(writer_);
  writer_ = -1;
  start = absl::Now();
  EXPECT_TRUE(stream.WaitReadable(absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  errno = EINVAL;
  EXPECT_FALSE(stream.ReadFull(&c, 1));
  EXPECT_EQ(errno, 0);
}

TEST_F(ByteStreamTest, AwaitReadableReturnsOnBytesOnCloseOrWhenTheSpinIsOver) {
  ByteStream stream(reader_);
  // Nothing arrives: it spins for about the time given, then returns.
  absl::Time start = absl::Now();
  stream.AwaitReadable(absl::Milliseconds(20));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  // Bytes arrive while it spins: it returns with them unread.
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(5));
    Send("x");
  });
  stream.AwaitReadable(absl::Seconds(30));
  writer.join();
  char c = 0;
  ASSERT_TRUE(stream.ReadFull(&c, 1));
  EXPECT_EQ(c, 'x');
  // The peer goes away: it returns at once rather than spinning on.
  close(writer_);
  writer_ = -1;
  start = absl::Now();
  stream.AwaitReadable(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // No spin at all returns at once.
  stream.AwaitReadable(absl::ZeroDuration());
}

}  // namespace
}  // namespace kvcache
