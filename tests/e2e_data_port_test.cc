// The bulk data port beside gRPC: byte-exact fetches and verified puts, clear
// errors for bad input, nothing left pinned or staged when a client walks
// away, and a client that falls back to gRPC whenever the data port is off or
// refuses it.
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "key/checksum.h"
#include "gtest/gtest.h"
#include "proto/data_port_wire.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

class E2eDataPortTest : public DaemonTest {
 protected:
  void Start(std::vector<std::string> flags) {
    flags.push_back("--host_capacity=64MiB");
    flags.push_back("--page_size=64KiB");
    StartDaemon(flags);
  }

  // One raw put on the data port: header for `size` bytes, then `payload`.
  static void SendPut(int fd, const v1::PutBlockHeader& header, const std::string& payload) {
    const std::string h = header.SerializeAsString();
    Send(fd, kDataPortPutMagic, h, h.size());
    if (!payload.empty()) {
      ASSERT_EQ(send(fd, payload.data(), payload.size(), MSG_NOSIGNAL), ssize_t(payload.size()));
    }
  }

  // Reads one put result: its status code, and its outcome in *outcome.
  static absl::StatusCode ReadPutResult(int fd, uint32_t* outcome) {
    uint32_t r[4];
    if (recv(fd, r, sizeof(r), MSG_WAITALL) != sizeof(r)) return absl::StatusCode::kAborted;
    std::string msg(r[3], '\0');
    if (r[3] > 0) recv(fd, msg.data(), r[3], MSG_WAITALL);
    EXPECT_EQ(r[0], kPutResultFrame);
    *outcome = r[2];
    return static_cast<absl::StatusCode>(r[1]);
  }

  v1::PutBlockHeader PutHeader(const std::string& key, const std::string& payload,
                               uint64_t checksum) {
    v1::PutBlockHeader h;
    h.set_namespace_(ns_);
    h.set_key(key);
    h.set_size(payload.size());
    h.set_checksum(checksum);
    return h;
  }

  // Clients that skip the same-host path, so these tests exercise the data port.
  ClientOptions DataPortOptions() {
    ClientOptions options = TestClientOptions(daemon_->address());
    options.use_local_path = false;
    return options;
  }

  uint32_t DataPort() {
    grpc::ClientContext ctx;
    v1::HelloResponse hello;
    EXPECT_TRUE(stub_->Hello(&ctx, {}, &hello).ok());
    return hello.data_port();
  }

  int Connect() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(DataPort());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  }

  static void Send(int fd, uint32_t magic, const std::string& body, uint32_t length) {
    uint32_t head[2] = {magic, length};
    ASSERT_EQ(write(fd, head, 8), 8);
    if (!body.empty()) {
      ASSERT_EQ(write(fd, body.data(), body.size()), ssize_t(body.size()));
    }
  }

  // Reads frames until END; returns its code and counts payload bytes.
  static absl::StatusCode ReadReply(int fd, uint64_t* payload) {
    while (true) {
      uint8_t frame[kChunkFrameHeaderBytes];
      if (recv(fd, frame, kEndFrameHeaderBytes, MSG_WAITALL) != kEndFrameHeaderBytes) {
        return absl::StatusCode::kAborted;  // closed
      }
      uint32_t kind;
      memcpy(&kind, frame, 4);
      if (kind == kEndFrame) {
        uint32_t code, len;
        memcpy(&code, frame + 4, 4);
        memcpy(&len, frame + 8, 4);
        std::string msg(len, '\0');
        if (len > 0) recv(fd, msg.data(), len, MSG_WAITALL);
        return static_cast<absl::StatusCode>(code);
      }
      recv(fd, frame + kEndFrameHeaderBytes, kChunkFrameHeaderBytes - kEndFrameHeaderBytes,
           MSG_WAITALL);
      FetchChunkHeader h = DecodeChunkFrameHeader(frame);
      std::string data(h.data_length, '\0');
      recv(fd, data.data(), data.size(), MSG_WAITALL);
      *payload += h.data_length;
    }
  }

  std::string FetchBody(const BlockKey& key) {
    v1::FetchRequest req;
    req.set_namespace_(ns_);
    req.add_items()->set_key(key.ToBytes());
    return req.SerializeAsString();
  }

  const std::string ns_ = TestSchema().NamespaceName();
};

TEST_F(E2eDataPortTest, BadRequestsGetClearAnswers) {
  Start({});
  std::vector<BlockKey> chain = TestChain(1, 1);
  auto client = Client::Create(DataPortOptions());
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 5000)).ok());

  int fd = Connect();  // not our protocol: closed without a reply
  Send(fd, 0x47455420, "", 0);
  uint64_t bytes = 0;
  EXPECT_EQ(ReadReply(fd, &bytes), absl::StatusCode::kAborted);
  close(fd);

  fd = Connect();  // too large a request: refused before reading it
  Send(fd, kDataPortMagic, "", kMaxDataPortRequestBytes + 1);
  EXPECT_EQ(ReadReply(fd, &bytes), absl::StatusCode::kInvalidArgument);
  close(fd);

  fd = Connect();  // not a FetchRequest
  Send(fd, kDataPortMagic, "\xff\xff\xff", 3);
  EXPECT_EQ(ReadReply(fd, &bytes), absl::StatusCode::kInvalidArgument);
  close(fd);

  fd = Connect();  // unknown key, then a good request on the same connection
  const std::string unknown = FetchBody(*BlockKey::FromBytes(std::string(32, 'u')));
  Send(fd, kDataPortMagic, unknown, unknown.size());
  EXPECT_EQ(ReadReply(fd, &bytes), absl::StatusCode::kNotFound);
  const std::string good = FetchBody(chain[0]);
  Send(fd, kDataPortMagic, good, good.size());
  EXPECT_EQ(ReadReply(fd, &bytes), absl::StatusCode::kOk);
  EXPECT_EQ(bytes, 5000u);
  close(fd);
}

TEST_F(E2eDataPortTest, RawPutsStoreVerifyAndReport) {
  Start({});
  const std::string payload(300000, 'q');
  const uint64_t sum =
      BlockChecksum({reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
  const std::string key(32, 'a');
  int fd = Connect();
  uint32_t outcome = 0;
  SendPut(fd, PutHeader(key, payload, sum + 1), payload);  // wrong checksum
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kDataLoss);
  SendPut(fd, PutHeader(key, payload, sum), payload);  // the same connection goes on
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kOk);
  EXPECT_EQ(outcome, v1::PUT_STORED);
  SendPut(fd, PutHeader(key, payload, sum), payload);
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kOk);
  EXPECT_EQ(outcome, v1::PUT_ALREADY_CACHED);
  v1::PutBlockHeader orphan = PutHeader(std::string(32, 'c'), payload, sum);
  orphan.set_parent_key(std::string(32, 'p'));
  SendPut(fd, orphan, payload);
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kOk);
  EXPECT_EQ(outcome, v1::PUT_PARENT_MISSING);
  SendPut(fd, PutHeader(std::string(33, 'k'), payload, sum), payload);  // bad key
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kInvalidArgument);
  close(fd);

  fd = Connect();  // a header larger than allowed: refused, connection closed
  Send(fd, kDataPortPutMagic, "", kMaxPutHeaderBytes + 1);
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPutResult(fd, &outcome), absl::StatusCode::kAborted);
  close(fd);

  // The stored block reads back exactly.
  auto client = Client::Create(DataPortOptions());
  std::string out(payload.size(), '\0');
  FetchTarget t{*BlockKey::FromBytes(key),
                absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size())};
  EXPECT_EQ((*client)->Fetch(ns_, {&t, 1}).blocks, 1u);
  EXPECT_EQ(out, payload);
}

TEST_F(E2eDataPortTest, ClientGoneMidPutFreesStaging) {
  Start({});
  const std::string payload(8 << 20, 'w');
  const int fd = Connect();
  SendPut(fd, PutHeader(std::string(32, 'w'), payload, 0), payload.substr(0, 1 << 20));
  // Wait until the daemon staged the bytes sent, then walk away. Pages are
  // taken as bytes arrive: at most one page (256 KiB) beyond them.
  v1::StatsResponse stats;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Stats(&ctx, {}, &stats).ok());
  } while (stats.staged_bytes() < (1u << 20) && absl::Now() < give_up);
  EXPECT_GE(stats.staged_bytes(), 1u << 20);
  EXPECT_LE(stats.staged_bytes(), (1u << 20) + (256u << 10));
  close(fd);  // TearDown checks staged bytes return to zero
}

TEST_F(E2eDataPortTest, ClientGoneMidFetchReleasesPins) {
  Start({});
  std::vector<BlockKey> chain = TestChain(2, 1);
  ClientOptions options = DataPortOptions();
  options.chunk_bytes = 1 << 20;
  auto client = Client::Create(options);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 12 << 20)).ok());
  const int fd = Connect();
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const std::string body = FetchBody(chain[0]);
  Send(fd, kDataPortMagic, body, body.size());
  uint8_t some[1000];
  ASSERT_EQ(recv(fd, some, sizeof(some), MSG_WAITALL), ssize_t(sizeof(some)));
  close(fd);  // walk away with most of 12 MiB unread; TearDown checks the pins
}

TEST_F(E2eDataPortTest, ClientUsesDataPortAndBothPathsAgree) {
  Start({});
  std::vector<BlockKey> chain = TestChain(3, 6);
  auto fast = Client::Create(DataPortOptions());
  ClientOptions grpc_options = DataPortOptions();
  grpc_options.use_data_port = false;
  auto grpc_only = Client::Create(grpc_options);
  ASSERT_TRUE((*fast)->Put(ns_, BlockKey(), TestPayloads(chain, 300000)).ok());
  for (Client* c : {fast->get(), grpc_only->get()}) {
    std::vector<std::string> out(6, std::string(300000, '\0'));
    std::vector<FetchTarget> targets;
    for (size_t i = 0; i < 6; ++i) {
      targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(out[i].data()), 300000)});
    }
    FetchResult r = c->Fetch(ns_, targets);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.blocks, 6u);
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], 300000));
    EXPECT_EQ(c->counters().data_port_fallbacks, 0u);
    EXPECT_EQ(c->counters().fetched_bytes, 6u * 300000);
  }
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, {}, &stats).ok());
  EXPECT_EQ(stats.fetches(), 2u);
  EXPECT_EQ(stats.tiers(1).bytes_out(), 2u * 6 * 300000);
}

// A lookup goes over the data port when the daemon serves it there, and
// says the same as one over gRPC.
TEST_F(E2eDataPortTest, LookupsGoOverTheDataPortAndAgreeWithGrpc) {
  Start({});
  std::vector<BlockKey> chain = TestChain(6, 5);
  auto fast = Client::Create(DataPortOptions());
  ClientOptions grpc_options = DataPortOptions();
  grpc_options.use_data_port = false;
  auto grpc_only = Client::Create(grpc_options);
  ASSERT_TRUE((*fast)->Put(ns_, BlockKey(), TestPayloads(chain, 3000)).ok());
  std::vector<BlockKey> asked = chain;
  asked.push_back(*BlockKey::FromBytes(std::string(32, 'u')));  // never stored
  for (Client* c : {fast->get(), grpc_only->get()}) {
    LookupResult r = c->Lookup(ns_, asked);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.hits, 5u);
    EXPECT_EQ(r.sizes, std::vector<uint64_t>(5, 3000));
    EXPECT_EQ(r.tiers, std::vector<v1::Tier>(5, v1::TIER_HOST));
    EXPECT_EQ(c->counters().data_port_fallbacks, 0u);
  }
  const ClientFigures fast_figures = (*fast)->counters().figures;
  EXPECT_EQ(fast_figures.at(ClientPath::kDataPort, ClientOp::kLookup).requests, 1u);
  EXPECT_EQ(fast_figures.at(ClientPath::kDataPort, ClientOp::kLookup).blocks, 5u);
  EXPECT_EQ(fast_figures.at(ClientPath::kGrpc, ClientOp::kLookup).requests, 0u);
  const ClientFigures grpc_figures = (*grpc_only)->counters().figures;
  EXPECT_EQ(grpc_figures.at(ClientPath::kGrpc, ClientOp::kLookup).requests, 1u);
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, {}, &stats).ok());
  EXPECT_EQ(stats.lookups(), 2u);
  EXPECT_EQ(stats.lookup_hit_keys(), 10u);
}

// Bad lookups on the data port get clear answers; one that parses keeps
// the connection for the next request.
TEST_F(E2eDataPortTest, BadLookupsGetClearAnswers) {
  Start({});
  auto read_result = [](int fd, std::string* body) {
    uint32_t head[3];
    if (recv(fd, head, sizeof(head), MSG_WAITALL) != sizeof(head)) return absl::StatusCode::kAborted;
    EXPECT_EQ(head[0], kLookupResultFrame);
    body->assign(head[2], '\0');
    if (head[2] > 0) recv(fd, body->data(), head[2], MSG_WAITALL);
    return static_cast<absl::StatusCode>(head[1]);
  };
  std::string body;
  int fd = Connect();  // too large: refused before reading it
  Send(fd, kDataPortLookupMagic, "", kMaxDataPortRequestBytes + 1);
  EXPECT_EQ(read_result(fd, &body), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(read_result(fd, &body), absl::StatusCode::kAborted);  // and closed
  close(fd);

  fd = Connect();  // not a LookupRequest
  Send(fd, kDataPortLookupMagic, "\xff\xff\xff", 3);
  EXPECT_EQ(read_result(fd, &body), absl::StatusCode::kInvalidArgument);
  close(fd);

  fd = Connect();  // a packed run that is not whole keys, then a good lookup
  v1::LookupRequest bad;
  bad.set_namespace_(ns_);
  bad.set_packed_keys(std::string(33, 'k'));
  bad.set_packed_key_size(32);
  std::string wire = bad.SerializeAsString();
  Send(fd, kDataPortLookupMagic, wire, wire.size());
  EXPECT_EQ(read_result(fd, &body), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(body.find("not whole keys"), std::string::npos) << body;
  v1::LookupRequest good;
  good.set_namespace_(ns_);
  good.set_packed_keys(std::string(64, 'k'));
  good.set_packed_key_size(32);
  wire = good.SerializeAsString();
  Send(fd, kDataPortLookupMagic, wire, wire.size());
  ASSERT_EQ(read_result(fd, &body), absl::StatusCode::kOk);
  v1::LookupResponse response;
  ASSERT_TRUE(response.ParseFromString(body));
  EXPECT_EQ(response.hit_count(), 0u);
  close(fd);
}

// A daemon that stops answering (here SIGSTOP: its sockets stay open)
// costs a data-port call one deadline: the call does not ask again over
// gRPC, which would wait as long a second time.
TEST_F(E2eDataPortTest, AHungDaemonCostsOneDeadlineNotTwo) {
  Start({});
  ClientOptions options = DataPortOptions();
  options.deadline = absl::Seconds(1);
  auto client = Client::Create(options);
  const std::vector<BlockKey> chain = TestChain(7, 3);
  const std::vector<BlockKey> first_two(chain.begin(), chain.begin() + 2);
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(first_two, 4000)).ok());
  ASSERT_EQ(kill(daemon_->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Milliseconds(100));  // until every thread has stopped
  std::string out(4000, '\0');
  FetchTarget target{chain[0], absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size())};
  absl::Time start = absl::Now();
  FetchResult fetched = (*client)->Fetch(ns_, {&target, 1});
  EXPECT_EQ(fetched.status.code(), absl::StatusCode::kDeadlineExceeded) << fetched.status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900));
  start = absl::Now();
  LookupResult looked = (*client)->Lookup(ns_, chain);
  EXPECT_EQ(looked.status.code(), absl::StatusCode::kDeadlineExceeded) << looked.status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900));
  start = absl::Now();
  auto put = (*client)->Put(ns_, chain[1], TestPayloads({chain[2]}, 4000));
  EXPECT_EQ(put.status().code(), absl::StatusCode::kDeadlineExceeded) << put.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900));
  EXPECT_EQ((*client)->counters().data_port_fallbacks, 0u);
  ASSERT_EQ(kill(daemon_->pid(), SIGCONT), 0);
  // Awake again, it answers on the same paths.
  fetched = (*client)->Fetch(ns_, {&target, 1});
  ASSERT_TRUE(fetched.status.ok()) << fetched.status;
  EXPECT_EQ(out, PayloadFor(chain[0], 4000));
  // (The timed-out put may or may not land: its bytes reached the daemon.)
  EXPECT_GE((*client)->Lookup(ns_, chain).hits, 2u);
}

TEST_F(E2eDataPortTest, DataPortOffMeansGrpc) {
  Start({"--data_port=-1"});
  EXPECT_EQ(DataPort(), 0u);
  std::vector<BlockKey> chain = TestChain(4, 2);
  auto client = Client::Create(DataPortOptions());
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 1000)).ok());
  std::string out(1000, '\0');
  FetchTarget t{chain[1], absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), 1000)};
  FetchResult r = (*client)->Fetch(ns_, {&t, 1});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kOk);  // a block from mid-chain, alone
  EXPECT_EQ(out, PayloadFor(chain[1], 1000));
  EXPECT_EQ((*client)->counters().data_port_fallbacks, 0u);
}

TEST_F(E2eDataPortTest, RefusedDataPortFallsBackToGrpc) {
  Start({"--data_port_max_connections=0"});  // every data connection is cut at once
  ASSERT_NE(DataPort(), 0u);
  std::vector<BlockKey> chain = TestChain(5, 3);
  auto client = Client::Create(DataPortOptions());
  ASSERT_TRUE((*client)->Put(ns_, BlockKey(), TestPayloads(chain, 70000)).ok());
  EXPECT_EQ((*client)->counters().data_port_fallbacks, 1u);  // the put fell back
  std::vector<std::string> out(3, std::string(70000, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < 3; ++i) {
    targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(out[i].data()), 70000)});
  }
  FetchResult r = (*client)->Fetch(ns_, targets);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.blocks, 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], PayloadFor(chain[i], 70000));
  // The data port is set aside for a while after a failure: gRPC directly.
  EXPECT_EQ((*client)->counters().data_port_fallbacks, 1u);
  // A new client's lookup meets the cut too, and asks over gRPC instead.
  auto fresh = Client::Create(DataPortOptions());
  LookupResult lookup = (*fresh)->Lookup(ns_, chain);
  ASSERT_TRUE(lookup.status.ok()) << lookup.status;
  EXPECT_EQ(lookup.hits, 3u);
  EXPECT_EQ((*fresh)->counters().data_port_fallbacks, 1u);
  const ClientFigures figures = (*fresh)->counters().figures;
  EXPECT_EQ(figures.at(ClientPath::kDataPort, ClientOp::kLookup).requests, 1u);
  EXPECT_EQ(figures.at(ClientPath::kGrpc, ClientOp::kLookup).requests, 1u);
}

}  // namespace
}  // namespace kvcache
