// Registration and the member watch against a real etcd on loopback.
#include "membership/etcd_members.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "membership/etcd_client.h"
#include "membership/etcd_registration.h"
#include "common/mutex.h"
#include "gtest/gtest.h"
#include "tools/etcd_process.h"
#include "tools/pki_files.h"

namespace kvcache {
namespace {

using Members = std::vector<std::string>;

// The lists on_change reported, written by the watch thread.
class ChangeLog {
 public:
  void Add(const Members& m) {
    MutexLock lock(&mu_);
    changes_.push_back(m);
  }
  std::vector<Members> changes() {
    MutexLock lock(&mu_);
    return changes_;
  }

 private:
  Mutex mu_;
  std::vector<Members> changes_ ABSL_GUARDED_BY(mu_);
};

class EtcdMembersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
  }

  std::unique_ptr<EtcdRegistration> Register(const std::string& address) {
    EtcdRegistrationOptions options;
    options.etcd = etcd_->endpoint();
    options.prefix = kPrefix;
    options.address = address;
    options.ttl = absl::Seconds(2);
    options.retry_interval = absl::Milliseconds(100);
    auto r = EtcdRegistration::Create(options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::unique_ptr<EtcdMembers> Watch(ChangeLog* log = nullptr) {
    EtcdMembersOptions options;
    options.etcd = etcd_->endpoint();
    options.prefix = kPrefix;
    options.retry_interval = absl::Milliseconds(100);
    auto m = EtcdMembers::Create(options, [log](const Members& now) {
      if (log != nullptr) log->Add(now);
    });
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }

  // Waits (up to `limit`) until the watch shows `want`.
  static bool AwaitMembers(const EtcdMembers& m, const Members& want,
                           absl::Duration limit = absl::Seconds(5)) {
    const absl::Time give_up = absl::Now() + limit;
    while (m.members() != want && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
    return m.members() == want;
  }

  static constexpr char kPrefix[] = "/kvcache-test/nodes/";
  std::unique_ptr<EtcdProcess> etcd_;
};

TEST(EtcdPrefixEndTest, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(EtcdPrefixEnd("/a/"), "/a0");
  EXPECT_EQ(EtcdPrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(EtcdPrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST_F(EtcdMembersTest, SeesJoinsAndCleanLeavesAtOnce) {
  auto a = Register("127.0.0.1:1001");
  ASSERT_TRUE(a->registered()) << a->last_error();
  ChangeLog log;
  auto watch = Watch(&log);
  ASSERT_EQ(watch->members(), Members{"127.0.0.1:1001"});
  auto b = Register("127.0.0.1:1002");
  EXPECT_TRUE(AwaitMembers(*watch, {"127.0.0.1:1001", "127.0.0.1:1002"}));
  EXPECT_EQ(a->Describe(), std::string(kPrefix) + "127.0.0.1:1001 in etcd at " + etcd_->endpoint() +
                               ": registered");
  // A clean stop revokes the lease: gone well before the 2 s TTL runs out.
  const absl::Time left = absl::Now();
  a->Leave();
  EXPECT_FALSE(a->registered());
  EXPECT_NE(a->Describe().find(": left the cluster"), std::string::npos) << a->Describe();
  EXPECT_TRUE(AwaitMembers(*watch, {"127.0.0.1:1002"}, absl::Seconds(1)));
  EXPECT_LT(absl::Now() - left, absl::Seconds(1));
  // Every change was reported once, in order.
  const std::vector<Members> changes = log.changes();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0], Members{"127.0.0.1:1001"});
  EXPECT_EQ(changes[2], Members{"127.0.0.1:1002"});
}

TEST_F(EtcdMembersTest, RenewalKeepsAMemberPastItsTtl) {
  auto a = Register("127.0.0.1:1001");
  auto watch = Watch();
  absl::SleepFor(absl::Seconds(5));  // 2.5 TTLs
  EXPECT_EQ(watch->members(), Members{"127.0.0.1:1001"});
  EXPECT_TRUE(a->registered());
}

TEST_F(EtcdMembersTest, ALostLeaseIsRegisteredAgain) {
  auto a = Register("127.0.0.1:1001");
  ChangeLog log;
  auto watch = Watch(&log);
  auto client = EtcdClient::Create(etcd_->endpoint(), absl::Seconds(2));
  ASSERT_TRUE(client.ok());
  auto before = (*client)->RangePrefix(kPrefix);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->kvs.size(), 1u);
  // Someone else ends our lease (as etcd does when we stall past the TTL):
  // the key goes, and the next renewal finds out and registers again.
  ASSERT_TRUE((*client)->RevokeLease(before->kvs[0].lease).ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  int64_t lease = before->kvs[0].lease;
  while (absl::Now() < give_up) {
    auto now = (*client)->RangePrefix(kPrefix);
    if (now.ok() && now->kvs.size() == 1 && now->kvs[0].lease != before->kvs[0].lease) {
      lease = now->kvs[0].lease;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(lease, before->kvs[0].lease) << "not registered again within 5 s";
  // And it keeps the new lease: renewals after that succeed, with no churn.
  absl::SleepFor(absl::Milliseconds(1500));  // two renewal periods
  auto later = (*client)->RangePrefix(kPrefix);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->kvs.size(), 1u);
  EXPECT_EQ(later->kvs[0].lease, lease);
  EXPECT_TRUE(AwaitMembers(*watch, {"127.0.0.1:1001"}));
  EXPECT_TRUE(a->registered());
  // The watch saw it leave and come back.
  const std::vector<Members> changes = log.changes();
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[1], Members{});
}

TEST_F(EtcdMembersTest, AnEtcdOutageKeepsTheListAndTheWatchResumes) {
  auto a = Register("127.0.0.1:1001");
  auto watch = Watch();
  ASSERT_TRUE(AwaitMembers(*watch, {"127.0.0.1:1001"}));
  etcd_->Kill();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(watch->members(), Members{"127.0.0.1:1001"});  // last known list stays
  ASSERT_TRUE(etcd_->Restart().ok());
  auto b = Register("127.0.0.1:1002");
  EXPECT_TRUE(AwaitMembers(*watch, {"127.0.0.1:1001", "127.0.0.1:1002"}));
}

TEST_F(EtcdMembersTest, UnreachableEtcdIsAClearError) {
  EtcdMembersOptions options;
  options.etcd = "127.0.0.1:1";  // nothing listens there
  options.timeout = absl::Milliseconds(300);
  auto m = EtcdMembers::Create(options, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
  EXPECT_NE(m.status().message().find("127.0.0.1:1"), std::string::npos) << m.status();
}

}  // namespace
}  // namespace kvcache

namespace kvcache {
namespace {

// etcd serving only TLS and demanding client certificates (--client-cert-auth),
// as a cluster across hosts runs it: membership works with the CA and a
// client certificate, and not without them.
TEST(EtcdTlsTest, MembershipOverTlsWithClientCertificates) {
  const std::string dir = ::testing::TempDir() + "/etcd-pki";
  std::filesystem::create_directories(dir);
  absl::StatusOr<PkiFiles> pki = MakePkiFiles(dir);
  ASSERT_TRUE(pki.ok()) << pki.status();
  const EtcdProcess::Tls tls{pki->server_cert, pki->server_key, pki->ca};
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start(&tls);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  ChannelSecurity security;
  security.tls_ca = pki->ca;
  security.tls_cert = pki->client_cert;
  security.tls_key = pki->client_key;

  EtcdRegistrationOptions registration;
  registration.etcd = (*etcd)->endpoint();
  registration.etcd_security = security;
  registration.prefix = "/kvcache-tls/nodes/";
  registration.address = "127.0.0.1:2001";
  registration.ttl = absl::Seconds(2);
  auto registered = EtcdRegistration::Create(registration);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_TRUE((*registered)->registered()) << (*registered)->last_error();

  EtcdMembersOptions members;
  members.etcd = (*etcd)->endpoint();
  members.etcd_security = security;
  members.prefix = "/kvcache-tls/nodes/";
  auto watch = EtcdMembers::Create(members, [](const std::vector<std::string>&) {});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ((*watch)->members(), std::vector<std::string>{"127.0.0.1:2001"});

  // No client certificate, another CA's, or plaintext: nothing is read.
  ChannelSecurity no_cert;
  no_cert.tls_ca = pki->ca;
  ChannelSecurity foreign = security;
  foreign.tls_cert = pki->foreign_cert;
  foreign.tls_key = pki->foreign_key;
  for (const ChannelSecurity& refused : {no_cert, foreign, ChannelSecurity()}) {
    auto client = EtcdClient::Create((*etcd)->endpoint(), absl::Seconds(2), refused);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_FALSE((*client)->RangePrefix("/kvcache-tls/").ok()) << refused.tls_cert;
  }
  // A CA file that does not load is the caller's error, at once.
  ChannelSecurity missing;
  missing.tls_ca = dir + "/no-such.pem";
  EXPECT_EQ(EtcdClient::Create((*etcd)->endpoint(), absl::Seconds(2), missing).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Turns etcd's authentication on: user root (its own role, as etcd wants
// before it enables authentication) and `user`, whose role may read and
// write the keys under `prefix` and nothing else.
absl::Status TurnOnEtcdAuth(const std::string& endpoint, const std::string& user,
                            const std::string& password, const std::string& prefix) {
  auto auth = etcdserverpb::Auth::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  const auto done = [](const char* step, const grpc::Status& s) {
    return s.ok() ? absl::OkStatus()
                  : absl::InternalError(absl::StrCat(step, ": ", s.error_message()));
  };
  for (const auto& [name, secret] : {std::pair{std::string("root"), std::string("root-pw")},
                                     std::pair{user, password}}) {
    etcdserverpb::AuthUserAddRequest add;
    add.set_name(name);
    add.set_password(secret);
    etcdserverpb::AuthUserAddResponse added;
    grpc::ClientContext c1;
    if (absl::Status s = done("UserAdd", auth->UserAdd(&c1, add, &added)); !s.ok()) return s;
    etcdserverpb::AuthRoleAddRequest role;
    role.set_name(name);
    etcdserverpb::AuthRoleAddResponse role_added;
    grpc::ClientContext c2;
    if (absl::Status s = done("RoleAdd", auth->RoleAdd(&c2, role, &role_added)); !s.ok()) return s;
    etcdserverpb::AuthUserGrantRoleRequest grant;
    grant.set_user(name);
    grant.set_role(name);
    etcdserverpb::AuthUserGrantRoleResponse granted;
    grpc::ClientContext c3;
    if (absl::Status s = done("UserGrantRole", auth->UserGrantRole(&c3, grant, &granted));
        !s.ok()) {
      return s;
    }
  }
  etcdserverpb::AuthRoleGrantPermissionRequest perm;
  perm.set_name(user);
  perm.mutable_perm()->set_perm_type(etcdserverpb::Permission::READWRITE);
  perm.mutable_perm()->set_key(prefix);
  perm.mutable_perm()->set_range_end(EtcdPrefixEnd(prefix));
  etcdserverpb::AuthRoleGrantPermissionResponse permitted;
  grpc::ClientContext c4;
  if (absl::Status s = done("RoleGrantPermission", auth->RoleGrantPermission(&c4, perm, &permitted));
      !s.ok()) {
    return s;
  }
  etcdserverpb::AuthEnableResponse enabled;
  grpc::ClientContext c5;
  return done("AuthEnable", auth->AuthEnable(&c5, {}, &enabled));
}

// etcd with its authentication on: membership logs in as a user allowed
// its own prefix only; a wrong password, no user, or a key outside the
// prefix is refused; when a token lapses, calls log in again by themselves.
TEST(EtcdAuthTest, MembershipLogsInAsAUserLimitedToItsPrefix) {
  // Tokens that lapse after a second unused.
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd =
      EtcdProcess::Start(nullptr, {"--auth-token-ttl=1"});
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const std::string endpoint = (*etcd)->endpoint();
  ASSERT_TRUE(TurnOnEtcdAuth(endpoint, "kvcache", "s3cret", "/kvcache-auth/").ok());
  ChannelSecurity login;
  login.user = "kvcache";
  login.password = "s3cret";

  EtcdRegistrationOptions registration;
  registration.etcd = endpoint;
  registration.etcd_security = login;
  registration.prefix = "/kvcache-auth/nodes/";
  registration.address = "127.0.0.1:2002";
  registration.ttl = absl::Seconds(2);
  auto registered = EtcdRegistration::Create(registration);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_TRUE((*registered)->registered()) << (*registered)->last_error();
  EtcdMembersOptions members;
  members.etcd = endpoint;
  members.etcd_security = login;
  members.prefix = "/kvcache-auth/nodes/";
  auto watch = EtcdMembers::Create(members, [](const std::vector<std::string>&) {});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ((*watch)->members(), std::vector<std::string>{"127.0.0.1:2002"});

  // A wrong password, or no user at all: nothing is read.
  ChannelSecurity wrong = login;
  wrong.password = "guess";
  for (const ChannelSecurity& refused : {wrong, ChannelSecurity()}) {
    auto client = EtcdClient::Create(endpoint, absl::Seconds(2), refused);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<EtcdRange> range = (*client)->RangePrefix("/kvcache-auth/");
    EXPECT_FALSE(range.ok()) << refused.user;
  }
  // The user's role covers its prefix only.
  auto client = EtcdClient::Create(endpoint, absl::Seconds(2), login);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Put("/kvcache-auth/x", "1", 0).ok());
  EXPECT_EQ((*client)->Put("/elsewhere/x", "1", 0).code(), absl::StatusCode::kPermissionDenied);

  // The client's token lapses unused: its next call is refused for it, logs
  // in again and is answered.
  absl::SleepFor(absl::Seconds(3));
  absl::StatusOr<EtcdRange> after = (*client)->RangePrefix("/kvcache-auth/x");
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->kvs.size(), 1u);
  EXPECT_EQ(after->kvs[0].value, "1");
  // Membership kept going through the lapses of its own tokens.
  EXPECT_TRUE((*registered)->registered()) << (*registered)->last_error();
  EXPECT_EQ((*watch)->members(), std::vector<std::string>{"127.0.0.1:2002"});

  // A password is not sent in the clear to another host.
  EXPECT_EQ(EtcdClient::Create("10.1.2.3:2379", absl::Seconds(2), login).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvcache
