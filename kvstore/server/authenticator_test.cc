#include "kvstore/server/authenticator.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

// What an operator writes in the token file: sha256sum's digest.
std::string Sha256Hex(const std::string& text) {
  const std::string command = "printf %s '" + text + "' | sha256sum";
  FILE* pipe = popen(command.c_str(), "r");
  char out[65] = {};
  EXPECT_EQ(fread(out, 1, 64, pipe), 64u);
  pclose(pipe);
  return std::string(out, 64);
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  absl::StatusOr<std::unique_ptr<Authenticator>> Create(const std::string& local = "") {
    return Authenticator::Create({path_, local});
  }
  const std::string path_ = ::testing::TempDir() + "/tokens";
};

TEST_F(AuthenticatorTest, OffMeansOneTenantOfAdmins) {
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create({});
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_FALSE((*auth)->enabled());
  absl::StatusOr<Identity> who = (*auth)->OfCaller("", "");
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->tenant, kDefaultTenant);
  EXPECT_EQ(who->role, Role::kAdmin);
  EXPECT_TRUE((*auth)->OfLocalPeer(12345).ok());
}

TEST_F(AuthenticatorTest, TokensAndCertificatesMapToTenantsAndRoles) {
  Write("# tenants\n" + Sha256Hex("alpha-token") + " alpha write\n\n" +
        Sha256Hex("beta-token") + "\tbeta read  # a comment\n" + "cn:worker-7 gamma admin\n");
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Create();
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->identities(), 3u);

  absl::StatusOr<Identity> alpha = (*auth)->OfCaller("Bearer alpha-token", "");
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_EQ(alpha->tenant, "alpha");
  EXPECT_EQ(alpha->role, Role::kWrite);
  absl::StatusOr<Identity> beta = (*auth)->OfCaller("Bearer beta-token", "worker-7");
  ASSERT_TRUE(beta.ok());
  EXPECT_EQ(beta->tenant, "beta");  // a token wins over a certificate
  absl::StatusOr<Identity> gamma = (*auth)->OfCaller("", "worker-7");
  ASSERT_TRUE(gamma.ok());
  EXPECT_EQ(gamma->tenant, "gamma");
  EXPECT_EQ(gamma->role, Role::kAdmin);

  for (auto [authorization, cn] : std::vector<std::pair<std::string, std::string>>{
           {"", ""},
           {"Bearer wrong", ""},
           {"Bearer ", ""},
           {"alpha-token", ""},  // no scheme
           {"Basic alpha-token", ""},
           {"", "worker-8"},
       }) {
    absl::StatusOr<Identity> who = (*auth)->OfCaller(authorization, cn);
    EXPECT_EQ(who.status().code(), absl::StatusCode::kUnauthenticated) << authorization << cn;
  }
}

TEST_F(AuthenticatorTest, RolesOrder) {
  const Identity reader{"t", Role::kRead}, writer{"t", Role::kWrite}, admin{"t", Role::kAdmin};
  EXPECT_TRUE(Permit(reader, Role::kRead).ok());
  EXPECT_EQ(Permit(reader, Role::kWrite).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Permit(writer, Role::kWrite).ok());
  EXPECT_EQ(Permit(writer, Role::kAdmin).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Permit(admin, Role::kRead).ok());
  EXPECT_TRUE(Permit(admin, Role::kAdmin).ok());
}

TEST_F(AuthenticatorTest, ReloadRevokesAndKeepsTheOldTableOnError) {
  Write(Sha256Hex("alpha-token") + " alpha write\n");
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Create();
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_TRUE((*auth)->OfCaller("Bearer alpha-token", "").ok());

  Write(Sha256Hex("beta-token") + " beta read\n");
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_EQ((*auth)->OfCaller("Bearer alpha-token", "").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE((*auth)->OfCaller("Bearer beta-token", "").ok());

  Write("not a line\n");
  absl::Status bad = (*auth)->Reload();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find(":1:"), std::string::npos) << bad;
  EXPECT_TRUE((*auth)->OfCaller("Bearer beta-token", "").ok());  // still in force
}

TEST_F(AuthenticatorTest, BadFilesNameTheLine) {
  for (const std::string& text : {
           std::string("abc alpha write\n"),                           // not a digest
           Sha256Hex("x") + " alpha owner\n",                          // no such role
           Sha256Hex("x") + " al/pha read\n",                          // tenant characters
           Sha256Hex("x") + " alpha\n",                                // a field short
           std::string("cn: alpha read\n"),                            // empty name
       }) {
    Write("# first\n" + text);
    absl::StatusOr<std::unique_ptr<Authenticator>> auth = Create();
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(auth.status().message().find(":2:"), std::string::npos) << auth.status();
  }
  absl::StatusOr<std::unique_ptr<Authenticator>> missing =
      Authenticator::Create({::testing::TempDir() + "/no-such-file", ""});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AuthenticatorTest, LocalPeersByUid) {
  Write(Sha256Hex("alpha-token") + " alpha write\n");
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Create("self:alpha:read, 4242:beta:write");
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<Identity> self = (*auth)->OfLocalPeer(getuid());
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->tenant, "alpha");
  EXPECT_EQ(self->role, Role::kRead);
  absl::StatusOr<Identity> other = (*auth)->OfLocalPeer(4242);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->tenant, "beta");
  EXPECT_EQ((*auth)->OfLocalPeer(4243).status().code(), absl::StatusCode::kUnauthenticated);

  for (const char* bad : {"self:alpha", "x:alpha:read", "1:alpha:root", "1::read"}) {
    EXPECT_EQ(Create(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(Authenticator::Create({"", "self:alpha:read"}).status().code(),
            absl::StatusCode::kInvalidArgument);  // needs authentication on
}

TEST(ActForTest, OnlyAnAdminActsForAnotherTenant) {
  const Identity admin{"ops", Role::kAdmin};
  absl::StatusOr<Identity> acting = ActFor(admin, "alpha");
  ASSERT_TRUE(acting.ok()) << acting.status();
  EXPECT_EQ(acting->tenant, "alpha");
  EXPECT_EQ(acting->role, Role::kAdmin);
  EXPECT_EQ(ActFor(admin, "")->tenant, "ops");
  const Identity writer{"alpha", Role::kWrite};
  EXPECT_EQ(ActFor(writer, "alpha")->role, Role::kWrite);  // itself
  EXPECT_EQ(ActFor(writer, "beta").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ActFor(admin, "a b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ActFor(admin, std::string(200, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcache
