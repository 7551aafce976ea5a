// The fixture of the security and tenancy tests: in-process daemons with
// TLS, mutual TLS and tokens, against certificates made with openssl once
// per test binary, and clients and stubs that present a given identity.
#ifndef KVCACHE_TESTS_SECURITY_FIXTURE_H_
#define KVCACHE_TESTS_SECURITY_FIXTURE_H_

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "common/channel_security.h"
#include "gtest/gtest.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/daemon.h"
#include "tests/test_blocks.h"
#include "tools/pki_files.h"

namespace kvcache {

inline constexpr size_t kBlock = 64 << 10;

inline std::string Sha256Hex(const std::string& text) {
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

  static inline PkiFiles* pki_ = nullptr;
  const std::string token_file_ = ::testing::TempDir() + "/tokens";
};

}  // namespace kvcache

#endif  // KVCACHE_TESTS_SECURITY_FIXTURE_H_
