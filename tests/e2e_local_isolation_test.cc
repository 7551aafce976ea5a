// What a local worker can and cannot do with what the daemon hands it,
// spoken in the raw same-host protocol (as a buggy or hostile worker of an
// allowed uid would): it can read the arena but never write or resize it;
// bytes it changes in its staging space after a commit never reach the
// cache; bytes that do not match their checksum are refused; and its
// staging space is bounded.
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "client/put_header.h"
#include "common/socket_io.h"
#include "gtest/gtest.h"
#include "kvcache/v1/local.pb.h"
#include "proto/local_wire.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

// One raw connection to the local socket, with both mappings.
class RawLocalConnection {
 public:
  explicit RawLocalConnection(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    uint32_t head[2];
    iovec iov = {head, sizeof(head)};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (recvmsg(fd_, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) != sizeof(head)) return;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_len != CMSG_LEN(2 * sizeof(int))) return;
    std::memcpy(fds_, CMSG_DATA(c), sizeof(fds_));
    std::string body(head[1], '\0');
    if (head[0] != static_cast<uint32_t>(LocalMessage::kWelcome) ||
        !ReadFull(fd_, body.data(), body.size()) || !welcome_.ParseFromString(body)) {
      return;
    }
    void* staging = mmap(nullptr, welcome_.staging_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED,
                         fds_[1], 0);
    if (staging != MAP_FAILED) staging_ = static_cast<uint8_t*>(staging);
  }
  ~RawLocalConnection() {
    if (staging_ != nullptr) munmap(staging_, welcome_.staging_bytes());
    for (int f : fds_) {
      if (f >= 0) close(f);
    }
    close(fd_);
  }

  bool ok() const { return staging_ != nullptr; }
  int arena_fd() const { return fds_[0]; }
  int staging_fd() const { return fds_[1]; }
  const v1::LocalWelcome& welcome() const { return welcome_; }
  uint8_t* staging() { return staging_; }

  // Sends one message and reads the reply into `reply`.
  bool Call(LocalMessage type, const google::protobuf::Message& body,
            google::protobuf::Message* reply) {
    const std::string bytes = body.SerializeAsString();
    uint32_t head[2] = {static_cast<uint32_t>(type), static_cast<uint32_t>(bytes.size())};
    iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(bytes.data()), bytes.size()}};
    if (!WriteFullV(fd_, iov, 2) || !ReadFull(fd_, head, sizeof(head))) return false;
    std::string in(head[1], '\0');
    return ReadFull(fd_, in.data(), in.size()) && reply->ParseFromString(in);
  }

  v1::LocalLease BeginPut(const std::string& ns, const PutBlock& block) {
    v1::LocalLease lease;
    EXPECT_TRUE(Call(LocalMessage::kPutBegin, MakePutHeader(ns, "", block), &lease));
    return lease;
  }
  // A put in one round trip of bytes already at `offset` of the staging
  // mapping; `checksum` as the header says it.
  v1::LocalResult PutStaged(const std::string& ns, const PutBlock& block, uint64_t offset) {
    v1::LocalPutStaged request;
    *request.mutable_header() = MakePutHeader(ns, "", block);
    request.set_staging_offset(offset);
    v1::LocalResult result;
    EXPECT_TRUE(Call(LocalMessage::kPutStaged, request, &result));
    return result;
  }
  v1::LocalResult Commit(uint64_t lease_id) {
    v1::LocalRelease commit;
    commit.set_lease_id(lease_id);
    v1::LocalResult result;
    EXPECT_TRUE(Call(LocalMessage::kPutCommit, commit, &result));
    return result;
  }

 private:
  int fd_ = -1;
  int fds_[2] = {-1, -1};
  v1::LocalWelcome welcome_;
  uint8_t* staging_ = nullptr;
};

class E2eLocalIsolationTest : public DaemonTest {
 protected:
  // The test's flags come last, so they override these defaults.
  void Start(const std::vector<std::string>& extra) {
    std::vector<std::string> flags = {"--host_capacity=16MiB", "--page_size=64KiB"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    StartDaemon(flags);
    conn_ = std::make_unique<RawLocalConnection>(hello_.local_socket());
    ASSERT_TRUE(conn_->ok());
  }

  void TearDown() override {
    conn_.reset();  // gives back whatever it still holds
    DaemonTest::TearDown();
  }

  // The block as a gRPC-only client reads it; empty on a miss.
  std::string FetchOverGrpc(const BlockKey& key, size_t size) {
    ClientOptions options = TestClientOptions(daemon_->address());
    options.use_local_path = false;
    options.use_data_port = false;
    auto client = Client::Create(options);
    std::string out(size, '\0');
    FetchTarget target{key, absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), size)};
    return (*client)->Fetch(ns_, {&target, 1}).blocks == 1 ? out : std::string();
  }

  const std::string ns_ = TestSchema().NamespaceName();
  std::unique_ptr<RawLocalConnection> conn_;
};

TEST_F(E2eLocalIsolationTest, ArenaMapsReadOnlyAndCannotBeResized) {
  Start({});
  const uint64_t arena = conn_->welcome().arena_bytes();
  EXPECT_EQ(mmap(nullptr, arena, PROT_READ | PROT_WRITE, MAP_SHARED, conn_->arena_fd(), 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(conn_->arena_fd(), 4096), 0);
  EXPECT_NE(ftruncate(conn_->staging_fd(), 0), 0);  // would SIGBUS the daemon
  void* view = mmap(nullptr, arena, PROT_READ, MAP_SHARED, conn_->arena_fd(), 0);
  ASSERT_NE(view, MAP_FAILED);
  EXPECT_NE(mprotect(view, arena, PROT_READ | PROT_WRITE), 0);
  munmap(view, arena);
}

TEST_F(E2eLocalIsolationTest, StagingChangesAfterCommitNeverReachTheCache) {
  Start({});
  const BlockKey key = TestChain(1, 1)[0];
  const std::string payload = PayloadFor(key, 100000);
  v1::LocalLease lease = conn_->BeginPut(ns_, {key, payload});
  ASSERT_EQ(lease.status_code(), 0) << lease.status_message();
  ASSERT_EQ(lease.staging_size(), 1);
  ASSERT_EQ(lease.staging(0).length(), payload.size());
  uint8_t* at = conn_->staging() + lease.staging(0).offset();
  std::memcpy(at, payload.data(), payload.size());
  v1::LocalResult result = conn_->Commit(lease.lease_id());
  ASSERT_EQ(result.status_code(), 0) << result.status_message();
  EXPECT_EQ(result.outcome(), v1::PUT_STORED);
  std::memset(at, 'X', payload.size());  // too late: the daemon has its own copy
  EXPECT_EQ(FetchOverGrpc(key, payload.size()), payload);
}

TEST_F(E2eLocalIsolationTest, BytesThatDoNotMatchTheirChecksumAreRefused) {
  Start({});
  const BlockKey key = TestChain(2, 1)[0];
  const std::string payload = PayloadFor(key, 70000);
  v1::LocalLease lease = conn_->BeginPut(ns_, {key, payload});
  ASSERT_EQ(lease.status_code(), 0) << lease.status_message();
  uint8_t* at = conn_->staging() + lease.staging(0).offset();
  std::memcpy(at, payload.data(), payload.size());
  at[12345] ^= 1;
  v1::LocalResult result = conn_->Commit(lease.lease_id());
  EXPECT_EQ(result.status_code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_EQ(FetchOverGrpc(key, payload.size()), "");  // a miss, never wrong bytes
}

// kPutStaged: the client picks the range and writes first; the daemon
// stores what it copied only if that matches the checksum, reads nothing
// outside the staging mapping, and keeps its own copy.
TEST_F(E2eLocalIsolationTest, PutsOfStagedBytesAreCheckedAndCopied) {
  Start({"--max_block_size=1MiB", "--local_staging=1MiB"});
  ASSERT_TRUE(conn_->welcome().put_staged());
  const std::vector<BlockKey> keys = TestChain(7, 3);
  const std::string payload = PayloadFor(keys[0], 90000);
  const uint64_t offset = 4096 * 3;
  std::memcpy(conn_->staging() + offset, payload.data(), payload.size());
  v1::LocalResult stored = conn_->PutStaged(ns_, {keys[0], payload}, offset);
  ASSERT_EQ(stored.status_code(), 0) << stored.status_message();
  EXPECT_EQ(stored.outcome(), v1::PUT_STORED);
  std::memset(conn_->staging() + offset, 'X', payload.size());  // too late
  EXPECT_EQ(FetchOverGrpc(keys[0], payload.size()), payload);
  EXPECT_EQ(conn_->PutStaged(ns_, {keys[0], payload}, offset).outcome(),
            v1::PUT_ALREADY_CACHED);

  // Bytes that differ from what the header's checksum says.
  const std::string other = PayloadFor(keys[1], 5000);
  std::memcpy(conn_->staging(), other.data(), other.size());
  conn_->staging()[4999] ^= 1;
  EXPECT_EQ(conn_->PutStaged(ns_, {keys[1], other}, 0).status_code(),
            static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_EQ(FetchOverGrpc(keys[1], other.size()), "");

  // Ranges outside the mapping: refused, the connection still serves.
  const uint64_t size = conn_->welcome().staging_bytes();
  for (uint64_t bad : {size - 4999, size, size + 4096, ~uint64_t{0} - 100}) {
    v1::LocalResult refused = conn_->PutStaged(ns_, {keys[2], other}, bad);
    EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_NE(refused.status_message().find("outside"), std::string::npos)
        << refused.status_message();
  }
  std::memcpy(conn_->staging() + size - other.size(), other.data(), other.size());
  EXPECT_EQ(conn_->PutStaged(ns_, {keys[2], other}, size - other.size()).outcome(),
            v1::PUT_STORED);
}

TEST_F(E2eLocalIsolationTest, StagingSpaceIsBoundedAndComesBack) {
  Start({"--max_block_size=64KiB", "--local_staging=128KiB"});
  std::vector<BlockKey> keys = TestChain(3, 3);
  v1::LocalLease first = conn_->BeginPut(ns_, {keys[0], PayloadFor(keys[0], 65536)});
  v1::LocalLease second = conn_->BeginPut(ns_, {keys[1], PayloadFor(keys[1], 65536)});
  ASSERT_EQ(first.status_code(), 0) << first.status_message();
  ASSERT_EQ(second.status_code(), 0) << second.status_message();
  v1::LocalLease third = conn_->BeginPut(ns_, {keys[2], PayloadFor(keys[2], 65536)});
  EXPECT_EQ(third.status_code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(third.status_message().find("--local_staging"), std::string::npos)
      << third.status_message();
  EXPECT_EQ(third.lease_id(), 0u);

  const std::string payload = PayloadFor(keys[0], 65536);
  std::memcpy(conn_->staging() + first.staging(0).offset(), payload.data(), payload.size());
  ASSERT_EQ(conn_->Commit(first.lease_id()).status_code(), 0);
  third = conn_->BeginPut(ns_, {keys[2], PayloadFor(keys[2], 65536)});
  EXPECT_EQ(third.status_code(), 0) << third.status_message();
}

// With the arena full, a put refused for lack of staging space must not
// have evicted a cached block to make room first.
TEST_F(E2eLocalIsolationTest, PutRefusedForStagingEvictsNothing) {
  Start({"--host_capacity=192KiB", "--max_block_size=64KiB", "--local_staging=128KiB"});
  std::vector<BlockKey> keys = TestChain(4, 4);
  const std::string cached = PayloadFor(keys[0], 65536);
  v1::LocalLease lease = conn_->BeginPut(ns_, {keys[0], cached});
  ASSERT_EQ(lease.status_code(), 0) << lease.status_message();
  std::memcpy(conn_->staging() + lease.staging(0).offset(), cached.data(), cached.size());
  ASSERT_EQ(conn_->Commit(lease.lease_id()).status_code(), 0);
  // Two staged puts fill the arena's other two pages and the staging space.
  v1::LocalLease a = conn_->BeginPut(ns_, {keys[1], PayloadFor(keys[1], 65536)});
  v1::LocalLease b = conn_->BeginPut(ns_, {keys[2], PayloadFor(keys[2], 65536)});
  ASSERT_EQ(a.status_code(), 0) << a.status_message();
  ASSERT_EQ(b.status_code(), 0) << b.status_message();
  v1::LocalLease refused = conn_->BeginPut(ns_, {keys[3], PayloadFor(keys[3], 65536)});
  EXPECT_EQ(refused.status_code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(FetchOverGrpc(keys[0], cached.size()) == cached) << "the cached block was evicted";
}

TEST_F(E2eLocalIsolationTest, StagingSmallerThanTheLargestBlockIsRefusedAtStart) {
  auto d = DaemonProcess::Start("kvstore/kvstored",
                                {"--host_capacity=16MiB", "--max_block_size=1MiB",
                                 "--local_staging=512KiB"});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("exited early"), std::string::npos) << d.status();
}

}  // namespace
}  // namespace kvcache
