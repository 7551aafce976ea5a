// A daemon with TLS, mutual TLS, tokens and same-host tenants, against real
// certificates made with openssl: every caller that proves no one, or
// proves someone without the role, is refused with the right code and
// served nothing, on gRPC, the data port and the same-host socket
// (tenancy_test.cc: tenants against each other).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "client/client.h"
#include "common/byte_stream.h"
#include "common/channel_security.h"
#include "common/tls_stream.h"
#include "gtest/gtest.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/daemon.h"
#include "proto/data_port_wire.h"
#include "tests/security_fixture.h"
#include "tests/test_blocks.h"
#include "tools/pki_files.h"

namespace kvcache {
namespace {

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
