// A daemon with TLS, mutual TLS, tokens and same-host tenants, against real
// certificates made with openssl: each tenant sees only its own blocks on
// every RPC and path, and every caller that proves no one, or proves someone
// without the role, is refused with the right code and served nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <array>
#include <atomic>
#include <thread>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/channel_security.h"
#include "client/client.h"
#include "common/byte_stream.h"
#include "common/tls_stream.h"
#include "gtest/gtest.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/daemon.h"
#include "proto/data_port_wire.h"
#include "tests/test_blocks.h"
#include "tools/pki_files.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 64 << 10;

std::string Sha256Hex(const std::string& text) {
  FILE* pipe = popen(absl::StrCat("printf %s '", text, "' | sha256sum").c_str(), "r");
  char out[65] = {};
  EXPECT_EQ(fread(out, 1, 64, pipe), 64u);
  pclose(pipe);
  return std::string(out, 64);
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<PkiFiles> made = MakePkiFiles(::testing::TempDir());
    ASSERT_TRUE(made.ok()) << made.status();
    pki_ = new PkiFiles(*std::move(made));
  }

  void SetUp() override {
    WriteTokens({{"alpha-token", "alpha write"},
                 {"beta-token", "beta write"},
                 {"reader-token", "alpha read"},
                 {"admin-token", "ops admin"}},
                "cn:worker-a gamma write\n");
  }

  void WriteTokens(const std::vector<std::pair<std::string, std::string>>& tokens,
                   const std::string& extra = "") {
    std::ofstream out(token_file_);
    for (const auto& [token, who] : tokens) out << Sha256Hex(token) << " " << who << "\n";
    out << extra;
  }

  DaemonOptions Options(bool tls, bool mutual) {
    DaemonOptions options;
    options.store.arena.capacity_bytes = 32ull << 20;
    options.store.arena.page_bytes = 64 << 10;
    options.store.arena.prefault = false;
    options.limits.max_block_bytes = 1ull << 20;
    options.local_staging_bytes = 4ull << 20;
    static int daemons = 0;
    options.local_socket = absl::StrCat("/tmp/kvcache_security_", getpid(), "_", daemons++, ".sock");
    if (tls) {
      options.tls_cert = pki_->server_cert;
      options.tls_key = pki_->server_key;
    }
    if (mutual) options.tls_client_ca = pki_->ca;
    options.auth.token_file = token_file_;
    return options;
  }

  ChannelSecurity Security(const std::string& token, bool tls = true) {
    ChannelSecurity s;
    if (tls) s.tls_ca = pki_->ca;
    s.token = token;
    return s;
  }

  std::unique_ptr<Client> ClientOf(const Daemon& daemon, const ChannelSecurity& security,
                                   bool local = false) {
    ClientOptions options = TestClientOptions(daemon.bound());
    options.security = security;
    options.use_local_path = local;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::unique_ptr<v1::KvCache::Stub> StubOf(const Daemon& daemon, const ChannelSecurity& security) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(daemon.bound(), security);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::KvCache::NewStub(*channel);
  }

  static grpc::StatusCode LookupCode(v1::KvCache::Stub& stub, const std::vector<BlockKey>& chain) {
    v1::LookupRequest request;
    request.set_namespace_("ns");
    for (const BlockKey& k : chain) request.add_keys(k.ToBytes());
    v1::LookupResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub.Lookup(&ctx, request, &response).error_code();
  }

  static PkiFiles* pki_;
  const std::string token_file_ = ::testing::TempDir() + "/tokens";
};

PkiFiles* SecurityTest::pki_ = nullptr;

// Payloads of tenant beta: the same keys as alpha's, other bytes.
std::vector<PutBlock> BetaPayloads(const std::vector<BlockKey>& chain) {
  std::vector<PutBlock> out = TestPayloads(chain, kBlock);
  for (PutBlock& b : out) b.payload.assign(kBlock, 'B');
  return out;
}

TEST_F(SecurityTest, TenantsNeverSeeEachOthersBlocks) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, false));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string banner = (*daemon)->Banner();
  EXPECT_NE(banner.find("security:  TLS; tokens (5 identities"), std::string::npos) << banner;
  EXPECT_NE(banner.find("beside gRPC; TLS 1.3; tokens)"), std::string::npos) << banner;

  auto alpha = ClientOf(**daemon, Security("alpha-token"));
  auto beta = ClientOf(**daemon, Security("beta-token"));
  const std::vector<BlockKey> chain = TestChain(1, 4);
  auto put = alpha->Put("ns", BlockKey(), TestPayloads(chain, kBlock));
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(*put, std::vector<v1::PutOutcome>(4, v1::PUT_STORED));

  // Beta: nothing on any RPC.
  EXPECT_EQ(beta->Lookup("ns", chain).hits, 0u);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChecked(*beta, "ns", chain, kBlock, &wrong).blocks, 0u);
  auto beta_stub = StubOf(**daemon, Security("beta-token"));
  {
    grpc::ClientContext ctx;
    v1::ListResponse list;
    ASSERT_TRUE(beta_stub->List(&ctx, v1::ListRequest(), &list).ok());
    EXPECT_EQ(list.prefixes_size(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::InspectRequest inspect;
    inspect.set_namespace_("ns");
    inspect.set_key(chain[0].ToBytes());
    v1::InspectResponse r;
    EXPECT_EQ(beta_stub->Inspect(&ctx, inspect, &r).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    v1::EvictResponse r;
    ASSERT_TRUE(beta_stub->Evict(&ctx, evict, &r).ok());
    EXPECT_EQ(r.blocks(), 0u);
  }
  // Beta stores the same keys with its own bytes; each reads its own.
  auto beta_put = beta->Put("ns", BlockKey(), BetaPayloads(chain));
  ASSERT_TRUE(beta_put.ok()) << beta_put.status();
  EXPECT_EQ(FetchChecked(*alpha, "ns", chain, kBlock, &wrong).blocks, 4u);
  EXPECT_EQ(wrong, 0u);
  std::vector<std::string> bufs(4, std::string(kBlock, '\0'));
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < 4; ++i) {
    targets.push_back({chain[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(bufs[i].data()), kBlock)});
  }
  ASSERT_EQ(beta->Fetch("ns", targets).blocks, 4u);
  for (const std::string& b : bufs) EXPECT_EQ(b, std::string(kBlock, 'B'));

  // All of it went over the data port, inside TLS, with no fallback.
  for (Client* c : {alpha.get(), beta.get()}) {
    const ClientCounters counters = c->counters();
    EXPECT_EQ(counters.data_port_fallbacks, 0u);
    EXPECT_GT(counters.figures.at(ClientPath::kDataPort, ClientOp::kFetch).requests, 0u);
    EXPECT_GT(counters.figures.at(ClientPath::kDataPort, ClientOp::kPut).requests, 0u);
    EXPECT_EQ(counters.figures.at(ClientPath::kGrpc, ClientOp::kFetch).requests, 0u);
  }

  // Stats: a tenant sees its own usage line, an admin every tenant's.
  {
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    ASSERT_TRUE(beta_stub->Stats(&ctx, {}, &stats).ok());
    ASSERT_EQ(stats.tenants_size(), 1);
    EXPECT_EQ(stats.tenants(0).tenant(), "beta");
  }
  auto admin = StubOf(**daemon, Security("admin-token"));
  {
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    ASSERT_TRUE(admin->Stats(&ctx, {}, &stats).ok());
    EXPECT_EQ(stats.tenants_size(), 2);
  }
  // An admin lists and evicts in another tenant; a writer may not.
  {
    grpc::ClientContext ctx;
    v1::ListRequest list;
    list.set_tenant("alpha");
    v1::ListResponse r;
    ASSERT_TRUE(admin->List(&ctx, list, &r).ok());
    ASSERT_EQ(r.prefixes_size(), 1);
    EXPECT_EQ(r.prefixes(0).blocks(), 4u);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    evict.set_tenant("alpha");
    v1::EvictResponse r;
    EXPECT_EQ(beta_stub->Evict(&ctx, evict, &r).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    evict.set_tenant("alpha");
    v1::EvictResponse r;
    ASSERT_TRUE(admin->Evict(&ctx, evict, &r).ok());
    EXPECT_EQ(r.blocks(), 4u);
  }
  EXPECT_EQ(alpha->Lookup("ns", chain).hits, 0u);
  EXPECT_EQ(beta->Lookup("ns", chain).hits, 4u);  // untouched
}

TEST_F(SecurityTest, CallersThatProveNoOneOrLackTheRoleAreRefused) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, false));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<BlockKey> chain = TestChain(2, 2);
  auto alpha = ClientOf(**daemon, Security("alpha-token"));
  ASSERT_TRUE(alpha->Put("ns", BlockKey(), TestPayloads(chain, kBlock)).ok());

  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("")), chain),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("forged-token")), chain),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("alpha-token")), chain), grpc::StatusCode::OK);

  // A reader of alpha reads, but may not put or evict.
  auto reader = ClientOf(**daemon, Security("reader-token"));
  EXPECT_EQ(reader->Lookup("ns", chain).hits, 2u);
  absl::StatusOr<std::vector<v1::PutOutcome>> put =
      reader->Put("ns", BlockKey(), TestPayloads(TestChain(3, 1), kBlock));
  EXPECT_EQ(put.status().code(), absl::StatusCode::kPermissionDenied) << put.status();
  {
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_all(true);
    v1::EvictResponse r;
    EXPECT_EQ(StubOf(**daemon, Security("reader-token"))->Evict(&ctx, evict, &r).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Plaintext to the TLS port: no handshake, no answer.
  {
    auto plain = v1::KvCache::NewStub(
        grpc::CreateChannel((*daemon)->bound(), grpc::InsecureChannelCredentials()));
    EXPECT_EQ(LookupCode(*plain, chain), grpc::StatusCode::UNAVAILABLE);
  }
  // Revoked: the token file without alpha, re-read.
  WriteTokens({{"beta-token", "beta write"}});
  ASSERT_TRUE((*daemon)->Reload().ok());
  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("alpha-token")), chain),
            grpc::StatusCode::UNAUTHENTICATED);
  // A bad file keeps what is in force.
  std::ofstream(token_file_) << "garbage\n";
  EXPECT_FALSE((*daemon)->Reload().ok());
  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("beta-token")), chain), grpc::StatusCode::OK);
  // Nothing was lost or served to the refused: alpha's blocks are still
  // there for an admin... of the old file, so look as beta sees them: none.
  EXPECT_EQ(ClientOf(**daemon, Security("beta-token"))->Lookup("ns", chain).hits, 0u);
}

TEST_F(SecurityTest, MutualTlsNamesTheTenantAndRefusesOtherCertificates) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, true));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_NE((*daemon)->Banner().find("mutual TLS"), std::string::npos);
  const std::vector<BlockKey> chain = TestChain(4, 2);

  ChannelSecurity good = Security("");
  good.tls_cert = pki_->client_cert;
  good.tls_key = pki_->client_key;
  auto gamma = ClientOf(**daemon, good);
  auto put = gamma->Put("ns", BlockKey(), TestPayloads(chain, kBlock));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(gamma->Lookup("ns", chain).hits, 2u);
  {
    grpc::ClientContext ctx;
    v1::HelloResponse hello;
    ASSERT_TRUE(StubOf(**daemon, good)->Hello(&ctx, {}, &hello).ok());
    EXPECT_EQ(hello.tenant(), "gamma");
  }
  // A token wins over the certificate: alpha sees none of gamma's blocks.
  ChannelSecurity alpha = good;
  alpha.token = "alpha-token";
  EXPECT_EQ(ClientOf(**daemon, alpha)->Lookup("ns", chain).hits, 0u);

  ChannelSecurity foreign = Security("alpha-token");
  foreign.tls_cert = pki_->foreign_cert;
  foreign.tls_key = pki_->foreign_key;
  EXPECT_EQ(LookupCode(*StubOf(**daemon, foreign), chain), grpc::StatusCode::UNAVAILABLE);
  ChannelSecurity expired = Security("alpha-token");
  expired.tls_cert = pki_->expired_cert;
  expired.tls_key = pki_->expired_key;
  EXPECT_EQ(LookupCode(*StubOf(**daemon, expired), chain), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(LookupCode(*StubOf(**daemon, Security("alpha-token")), chain),
            grpc::StatusCode::UNAVAILABLE);  // no certificate at all
}

TEST_F(SecurityTest, SameHostPeersAreTheirUidsTenant) {
  DaemonOptions options = Options(false, false);
  options.auth.local_tenants = "self:alpha:read";
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<BlockKey> chain = TestChain(5, 3);
  // Put by alpha's token over gRPC (loopback: a token may go in the clear).
  auto writer = ClientOf(**daemon, Security("alpha-token", false), /*local=*/false);
  ASSERT_TRUE(writer->Put("ns", BlockKey(), TestPayloads(chain, kBlock)).ok());

  // The reader token is tenant alpha, as this uid is: the same-host path serves it.
  auto local = ClientOf(**daemon, Security("reader-token", false), /*local=*/true);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChecked(*local, "ns", chain, kBlock, &wrong).blocks, 3u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(local->counters().local_path_blocks, 3u);
  // Its uid has only the read role there: a put by lease is refused.
  auto refused = local->Put("ns", BlockKey(), TestPayloads(TestChain(6, 1), kBlock));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();

  // Beta's token is another tenant than this uid's: the client keeps off
  // the same-host path, and sees no alpha block on any path.
  auto beta = ClientOf(**daemon, Security("beta-token", false), /*local=*/true);
  EXPECT_EQ(beta->Lookup("ns", chain).hits, 0u);
  EXPECT_EQ(FetchChecked(*beta, "ns", chain, kBlock, &wrong).blocks, 0u);
  EXPECT_EQ(beta->counters().local_path_blocks, 0u);
  EXPECT_EQ(beta->LocalPath(), nullptr);

  // A uid without a tenant is refused at the door (the same check as above,
  // from a daemon that maps no uid).
  DaemonOptions unmapped = Options(false, false);
  absl::StatusOr<std::unique_ptr<Daemon>> other = Daemon::Start(unmapped);
  ASSERT_TRUE(other.ok()) << other.status();
  auto stranger = ClientOf(**other, Security("alpha-token", false), /*local=*/true);
  EXPECT_EQ(stranger->LocalPath(), nullptr);
}

// A raw connection to the daemon's data port: plaintext, or TLS checked
// against the test CA (with a client certificate when given).
std::unique_ptr<ByteStream> DataPortConnection(int port, const PkiFiles* pki, bool tls,
                                               const std::string& cert = "",
                                               const std::string& key = "") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  if (!tls) return std::make_unique<ByteStream>(fd);
  absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::ForClient(pki->ca, cert, key);
  EXPECT_TRUE(context.ok()) << context.status();
  absl::StatusOr<std::unique_ptr<ByteStream>> stream = (*context)->Connect(fd, "127.0.0.1");
  if (!stream.ok()) {
    std::cerr << "data port handshake: " << stream.status() << "\n";
    return nullptr;
  }
  return *std::move(stream);
}

// Sends a data-port fetch of `chain` and reads the first frame's 12 bytes:
// true if any reply came (the connection was served).
bool FetchAnswered(ByteStream& stream, const std::vector<BlockKey>& chain) {
  v1::FetchRequest request;
  request.set_namespace_("ns");
  for (const BlockKey& k : chain) {
    v1::FetchItem* item = request.add_items();
    item->set_key(k.ToBytes());
    item->set_length(kBlock);
  }
  std::string wire(8, '\0');
  request.AppendToString(&wire);
  const uint32_t head[2] = {kDataPortMagic, static_cast<uint32_t>(wire.size() - 8)};
  std::memcpy(wire.data(), head, sizeof(head));
  iovec iov{wire.data(), wire.size()};
  uint8_t frame[12];
  return stream.WriteFullV(&iov, 1) && stream.ReadFull(frame, sizeof(frame));
}

// Sends a data-port auth frame; the daemon's status code (-1: no answer).
int AuthCode(ByteStream& stream, const std::string& token) {
  uint32_t head[2] = {kDataPortAuthMagic, static_cast<uint32_t>(token.size())};
  iovec iov[2] = {{head, sizeof(head)}, {const_cast<char*>(token.data()), token.size()}};
  uint32_t result[3];
  if (!stream.WriteFullV(iov, 2) || !stream.ReadFull(result, sizeof(result))) return -1;
  std::string message(result[2], '\0');
  stream.ReadFull(message.data(), message.size());
  return static_cast<int>(result[1]);
}

TEST_F(SecurityTest, DataPortServesNothingWithoutTlsAndAnIdentity) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, false));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<BlockKey> chain = TestChain(7, 2);
  ASSERT_TRUE(ClientOf(**daemon, Security("alpha-token"))
                  ->Put("ns", BlockKey(), TestPayloads(chain, kBlock))
                  .ok());
  v1::HelloResponse hello;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(StubOf(**daemon, Security("alpha-token"))->Hello(&ctx, {}, &hello).ok());
  }
  const int port = static_cast<int>(hello.data_port());
  ASSERT_NE(port, 0);

  // Plaintext to the TLS data port: no handshake, nothing served.
  auto plain = DataPortConnection(port, pki_, false);
  EXPECT_FALSE(FetchAnswered(*plain, chain));
  // TLS but no identity: closed at the first request.
  auto anonymous = DataPortConnection(port, pki_, true);
  ASSERT_NE(anonymous, nullptr);
  EXPECT_FALSE(FetchAnswered(*anonymous, chain));
  // A forged token: UNAUTHENTICATED, then closed.
  auto forged = DataPortConnection(port, pki_, true);
  ASSERT_NE(forged, nullptr);
  EXPECT_EQ(AuthCode(*forged, "forged-token"), static_cast<int>(absl::StatusCode::kUnauthenticated));
  EXPECT_FALSE(FetchAnswered(*forged, chain));
  // Alpha's token: served.
  auto alpha = DataPortConnection(port, pki_, true);
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(AuthCode(*alpha, "alpha-token"), 0);
  EXPECT_TRUE(FetchAnswered(*alpha, chain));
  // A reader's put over the data port: PERMISSION_DENIED, nothing stored.
  auto reader = ClientOf(**daemon, Security("reader-token"));
  const std::vector<BlockKey> other = TestChain(8, 1);
  auto put = reader->Put("ns", BlockKey(), TestPayloads(other, kBlock));
  EXPECT_EQ(put.status().code(), absl::StatusCode::kPermissionDenied) << put.status();
  EXPECT_EQ(reader->counters().figures.at(ClientPath::kDataPort, ClientOp::kPut).requests, 1u);
  EXPECT_EQ(reader->Lookup("ns", other).hits, 0u);
  // Revoked: a new connection with alpha's token is refused.
  WriteTokens({{"beta-token", "beta write"}});
  ASSERT_TRUE((*daemon)->Reload().ok());
  auto revoked = DataPortConnection(port, pki_, true);
  ASSERT_NE(revoked, nullptr);
  EXPECT_EQ(AuthCode(*revoked, "alpha-token"),
            static_cast<int>(absl::StatusCode::kUnauthenticated));
}

TEST_F(SecurityTest, DataPortTakesTheClientCertificatesIdentity) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(Options(true, true));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ChannelSecurity good = Security("");
  good.tls_cert = pki_->client_cert;
  good.tls_key = pki_->client_key;
  auto gamma = ClientOf(**daemon, good);
  const std::vector<BlockKey> chain = TestChain(9, 3);
  ASSERT_TRUE(gamma->Put("ns", BlockKey(), TestPayloads(chain, kBlock)).ok());
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChecked(*gamma, "ns", chain, kBlock, &wrong).blocks, 3u);
  EXPECT_EQ(wrong, 0u);
  const ClientCounters c = gamma->counters();
  EXPECT_EQ(c.data_port_fallbacks, 0u);
  EXPECT_EQ(c.figures.at(ClientPath::kDataPort, ClientOp::kFetch).requests, 1u);

  v1::HelloResponse hello;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(StubOf(**daemon, good)->Hello(&ctx, {}, &hello).ok());
  }
  const int port = static_cast<int>(hello.data_port());
  // Another CA's certificate, an expired one, none: the daemon ends the
  // handshake (in TLS 1.3 the client may finish its side first, so the
  // refusal shows at the first request) and serves nothing.
  for (auto [cert, key] : {std::pair{pki_->foreign_cert, pki_->foreign_key},
                           std::pair{pki_->expired_cert, pki_->expired_key},
                           std::pair{std::string(), std::string()}}) {
    auto refused = DataPortConnection(port, pki_, true, cert, key);
    EXPECT_TRUE(refused == nullptr || !FetchAnswered(*refused, chain)) << cert;
  }
  // The right certificate: served with no token.
  auto worker = DataPortConnection(port, pki_, true, pki_->client_cert, pki_->client_key);
  ASSERT_NE(worker, nullptr);
  EXPECT_TRUE(FetchAnswered(*worker, chain));
}

// 10^5 random (tenant, namespace, key) tuples against an index that keeps
// only 8 bits of each entry's hash, so unequal tuples collide all the time:
// a tenant finds exactly the tuples it stored, with its own bytes, and never
// one another tenant stored under the same namespace and key.
TEST_F(SecurityTest, RandomTuplesNeverCrossTenantsEvenWhenTheirHashesCollide) {
  DaemonOptions options = Options(false, false);
  options.store.index_hash_bits = 8;
  options.store.arena.capacity_bytes = 256ull << 20;
  options.store.arena.page_bytes = 4096;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<std::string> tenants = {"alpha", "beta", "ops"};
  const std::vector<std::string> tokens = {"alpha-token", "beta-token", "admin-token"};
  const std::vector<std::string> namespaces = {"n0", "n1", "n2", "n3"};
  std::vector<std::unique_ptr<Client>> clients;
  for (const std::string& token : tokens) clients.push_back(ClientOf(**daemon, Security(token, false)));
  constexpr size_t kPool = 2000, kTuples = 100000, kPayload = 64;
  std::vector<BlockKey> pool = TestChain(11, kPool);
  auto payload = [&](size_t t, size_t n, const BlockKey& k) {
    std::string p = PayloadFor(k, kPayload);
    p[0] = static_cast<char>('A' + t);
    p[1] = static_cast<char>('0' + n);
    return p;
  };
  std::mt19937_64 random(20261204);
  auto tuple = [&] {
    return std::array<size_t, 3>{random() % tenants.size(), random() % namespaces.size(),
                                 random() % kPool};
  };
  // What each tenant stores: the distinct tuples among 10^5 random ones.
  std::set<std::array<size_t, 3>> stored;
  for (size_t i = 0; i < kTuples; ++i) stored.insert(tuple());
  std::map<std::pair<size_t, size_t>, std::vector<size_t>> chains;
  for (const auto& [t, n, k] : stored) chains[{t, n}].push_back(k);
  for (const auto& [tn, keys] : chains) {
    const auto [t, n] = tn;
    BlockKey parent;
    for (size_t from = 0; from < keys.size(); from += 500) {
      std::vector<PutBlock> blocks;
      for (size_t i = from; i < std::min(keys.size(), from + 500); ++i) {
        blocks.push_back({pool[keys[i]], payload(t, n, pool[keys[i]])});
      }
      auto put = clients[t]->Put(namespaces[n], parent, blocks);
      ASSERT_TRUE(put.ok()) << put.status();
      for (v1::PutOutcome o : *put) ASSERT_EQ(o, v1::PUT_STORED);
      parent = blocks.back().key;
    }
  }
  // 10^5 random queries: a hit exactly where the asker stored the tuple,
  // and then its own bytes.
  uint64_t cross_hits = 0, lost = 0, wrong_bytes = 0, hits = 0;
  std::string buffer(kPayload, '\0');
  for (size_t i = 0; i < kTuples; ++i) {
    const auto q = tuple();
    const auto [t, n, k] = q;
    const LookupResult found = clients[t]->Lookup(namespaces[n], {&pool[k], 1});
    ASSERT_TRUE(found.status.ok()) << found.status;
    const bool mine = stored.count(q) > 0;
    if (found.hits == 1 && !mine) ++cross_hits;
    if (found.hits == 0 && mine) ++lost;
    if (found.hits == 0) continue;
    ++hits;
    FetchTarget target{pool[k], absl::MakeSpan(reinterpret_cast<uint8_t*>(buffer.data()), kPayload)};
    if (clients[t]->Fetch(namespaces[n], {&target, 1}).blocks != 1 ||
        buffer != payload(t, n, pool[k])) {
      ++wrong_bytes;
    }
  }
  EXPECT_EQ(cross_hits, 0u);
  EXPECT_EQ(wrong_bytes, 0u);
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(hits, kTuples / 2);  // most queries ask for a stored tuple
}

// Two tenants with quotas put three times their quota at once, two streams
// each, while a third without one fills the rest: neither ever holds more
// than its quota (each drops its own coldest blocks), and the third's
// pressure never evicts a block of a tenant within its quota.
TEST_F(SecurityTest, QuotasHoldUnderTwoTenantsConcurrentPuts) {
  constexpr uint64_t kQuota = 8ull << 20;
  DaemonOptions options = Options(false, false);
  options.store.arena.capacity_bytes = 32ull << 20;
  options.store.tenant_quotas = {{"alpha", kQuota}, {"beta", kQuota}};
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_NE((*daemon)->Banner().find("quotas for 2 tenants"), std::string::npos);
  auto admin = StubOf(**daemon, Security("admin-token", false));
  auto usage = [&] {
    std::map<std::string, uint64_t> bytes;
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    EXPECT_TRUE(admin->Stats(&ctx, {}, &stats).ok());
    for (const v1::TenantUsage& t : stats.tenants()) bytes[t.tenant()] = t.bytes();
    return bytes;
  };

  constexpr size_t kPerStream = 3 * (kQuota / kBlock) / 2;  // 1.5x the quota per stream
  std::atomic<bool> done{false};
  std::atomic<uint64_t> over_quota{0}, not_stored{0}, samples{0};
  std::thread monitor([&] {
    while (!done.load()) {
      samples.fetch_add(1);
      // Stats sums the index shard by shard, so a sample taken while a
      // commit drops one block and inserts another can count both: one
      // block of slack in flight (commits with quotas go one at a time).
      // Once the puts are done the figure is exact, and checked below.
      for (const auto& [tenant, bytes] : usage()) {
        if (tenant != "ops" && bytes > kQuota + kBlock) over_quota.fetch_add(1);
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  std::vector<std::vector<BlockKey>> streams(4);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    streams[w] = TestChain(100 + w, kPerStream);
    writers.emplace_back([&, w] {
      auto client = ClientOf(**daemon, Security(w < 2 ? "alpha-token" : "beta-token", false));
      for (const BlockKey& key : streams[w]) {
        auto put = client->Put("ns", BlockKey(), TestPayloads({key}, kBlock));  // roots
        if (!put.ok() || (*put)[0] != v1::PUT_STORED) not_stored.fetch_add(1);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  monitor.join();
  EXPECT_GT(samples.load(), 10u);
  EXPECT_EQ(over_quota.load(), 0u);
  EXPECT_EQ(not_stored.load(), 0u);  // each made room from its own blocks
  std::map<std::string, uint64_t> after = usage();
  for (const char* tenant : {"alpha", "beta"}) {
    EXPECT_LE(after[tenant], kQuota) << tenant;
    EXPECT_GE(after[tenant], kQuota - 2 * kBlock) << tenant;  // and used it
  }
  // Each stream's newest block is there; its first ones went to make room.
  auto alpha = ClientOf(**daemon, Security("alpha-token", false));
  EXPECT_EQ(alpha->Lookup("ns", {&streams[0].back(), 1}).hits, 1u);
  EXPECT_EQ(alpha->Lookup("ns", {&streams[0].front(), 1}).hits, 0u);

  // Ops, with no quota, puts twice the whole arena: its pressure drops its
  // own blocks, never those of alpha and beta, who are within their quotas.
  auto ops = ClientOf(**daemon, Security("admin-token", false));
  const std::vector<BlockKey> flood = TestChain(200, 2 * (32ull << 20) / kBlock);
  for (const BlockKey& key : flood) ASSERT_TRUE(ops->Put("ns", BlockKey(), TestPayloads({key}, kBlock)).ok());
  std::map<std::string, uint64_t> flooded = usage();
  EXPECT_EQ(flooded["alpha"], after["alpha"]);
  EXPECT_EQ(flooded["beta"], after["beta"]);
  EXPECT_GT(flooded["ops"], 0u);
  EXPECT_EQ(ops->Lookup("ns", {&flood.back(), 1}).hits, 1u);
}

// A renewed certificate is served without a restart: gRPC re-reads its
// files by itself, the data port on Reload (SIGHUP).
TEST_F(SecurityTest, RenewedCertificatesAreServedWithoutARestart) {
  const std::string dir = ::testing::TempDir() + "/renewed";
  std::filesystem::create_directories(dir);
  absl::StatusOr<PkiFiles> renewed = MakePkiFiles(dir);  // another CA, another server key
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  const std::string cert = ::testing::TempDir() + "/live.pem", key = ::testing::TempDir() + "/live.key";
  std::filesystem::copy_file(pki_->server_cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(pki_->server_key, key, std::filesystem::copy_options::overwrite_existing);
  DaemonOptions options = Options(true, false);
  options.tls_cert = cert;
  options.tls_key = key;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::vector<BlockKey> chain = TestChain(12, 2);
  ASSERT_TRUE(ClientOf(**daemon, Security("alpha-token"))
                  ->Put("ns", BlockKey(), TestPayloads(chain, kBlock))
                  .ok());
  ChannelSecurity trusts_new = Security("alpha-token");
  trusts_new.tls_ca = renewed->ca;
  EXPECT_EQ(LookupCode(*StubOf(**daemon, trusts_new), chain), grpc::StatusCode::UNAVAILABLE);

  // Renew: the key first, then the certificate (as a renewal tool would).
  std::filesystem::copy_file(renewed->server_key, key, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renewed->server_cert, cert, std::filesystem::copy_options::overwrite_existing);
  grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
  for (int i = 0; i < 100 && code != grpc::StatusCode::OK; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    code = LookupCode(*StubOf(**daemon, trusts_new), chain);  // a new channel: a new handshake
  }
  EXPECT_EQ(code, grpc::StatusCode::OK);

  // The data port takes the new files on Reload; clients that trust only
  // the new CA then fetch over it with no fallback.
  ASSERT_TRUE((*daemon)->Reload().ok());
  auto client = ClientOf(**daemon, trusts_new);
  uint64_t wrong = 0;
  EXPECT_EQ(FetchChecked(*client, "ns", chain, kBlock, &wrong).blocks, 2u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(client->counters().data_port_fallbacks, 0u);
  EXPECT_EQ(client->counters().figures.at(ClientPath::kDataPort, ClientOp::kFetch).requests, 1u);
}

TEST_F(SecurityTest, RemoteListenNeedsTlsAndTokensOrInsecure) {
  DaemonOptions both = Options(true, false);
  both.listen = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<Daemon>> ok = Daemon::Start(both);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->Banner().find("INSECURE"), std::string::npos);

  DaemonOptions tls_only = both;
  tls_only.auth.token_file.clear();
  EXPECT_EQ(Daemon::Start(tls_only).status().code(), absl::StatusCode::kInvalidArgument);
  tls_only.insecure = true;
  absl::StatusOr<std::unique_ptr<Daemon>> insecure = Daemon::Start(tls_only);
  ASSERT_TRUE(insecure.ok()) << insecure.status();
  EXPECT_NE((*insecure)->Banner().find("INSECURE (--insecure)"), std::string::npos);

  for (auto [name, change, names] :
       std::vector<std::tuple<const char*, std::function<void(DaemonOptions&)>, const char*>>{
           {"cert without key", [](DaemonOptions& o) { o.tls_key.clear(); }, "--tls_key"},
           {"key of another cert",
            [](DaemonOptions& o) { o.tls_key = pki_->client_key; }, "is not the key"},
           {"unreadable CA", [](DaemonOptions& o) { o.tls_client_ca = "/no/such.pem"; },
            "--tls_client_ca"},
           {"bad token file", [](DaemonOptions& o) { o.auth.token_file = "/no/such"; },
            "token file"},
       }) {
    SCOPED_TRACE(name);
    DaemonOptions options = Options(true, false);
    change(options);
    absl::Status status = Daemon::Start(options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(names), std::string::npos) << status;
  }
  // A token never crosses the network in the clear.
  EXPECT_EQ(MakeChannel("10.1.2.3:50051", Security("alpha-token", false)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcache
