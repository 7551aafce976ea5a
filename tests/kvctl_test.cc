// kvctl against a real daemon, as an operator would use it.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/kvctl_runner.h"
#include "tools/daemon_process.h"
#include "tools/pki_files.h"

namespace kvcache {
namespace {

class KvctlTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({"--host_capacity=64MiB"}); }

  void Start(const std::vector<std::string>& flags) {
    auto d = DaemonProcess::Start("kvstore/kvstored", flags);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    server_ = "--server=" + daemon_->address() + " ";
    // 64 tokens, 16 per block: 4 blocks of 64 KiB.
    std::ofstream(TmpPath("tokens.txt")) << [] {
      std::string s;
      for (int i = 1; i <= 64; ++i) s += std::to_string(i) + (i % 16 ? " " : "\n");
      return s;
    }();
    std::string payload(256 << 10, '\0');
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 977);
    std::ofstream(TmpPath("payload.bin"), std::ios::binary) << payload;
    payload_ = payload;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string server_;
  std::string payload_;
};

TEST_F(KvctlTest, PutGetLsInspectEvict) {
  CliResult put = Kvctl(server_ + "put --tokens=" + TmpPath("tokens.txt") +
                  " --payload=" + TmpPath("payload.bin"));
  ASSERT_EQ(put.exit_code, 0) << put.out;
  EXPECT_NE(put.out.find("4 stored"), std::string::npos) << put.out;

  CliResult get = Kvctl(server_ + "get --tokens=" + TmpPath("tokens.txt") + " --out=" + TmpPath("out.bin"));
  ASSERT_EQ(get.exit_code, 0) << get.out;
  EXPECT_NE(get.out.find("4 of 4 blocks"), std::string::npos) << get.out;
  std::stringstream got;
  got << std::ifstream(TmpPath("out.bin"), std::ios::binary).rdbuf();
  EXPECT_TRUE(got.str() == payload_) << "fetched bytes differ";

  CliResult ls = Kvctl(server_ + "ls --json");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  nlohmann::json list = nlohmann::json::parse(ls.out);
  ASSERT_EQ(list["prefixes"].size(), 1u);
  EXPECT_EQ(list["prefixes"][0]["depth"], 4);
  EXPECT_EQ(list["prefixes"][0]["blocks"], "4");  // proto3 JSON writes uint64 as a string
  const std::string ns = list["prefixes"][0]["namespace"];
  CliResult table = Kvctl(server_ + "ls");
  EXPECT_NE(table.out.find("1 prefixes, 4 blocks, 256.0 KiB"), std::string::npos) << table.out;

  const std::string first_key = put.out.substr(put.out.find("first key ") + 10, 64);
  CliResult inspect = Kvctl(server_ + "inspect --ns=" + ns + " " + first_key);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("children   1"), std::string::npos) << inspect.out;
  CliResult inspect_json = Kvctl(server_ + "--json inspect --ns=" + ns + " " + first_key);
  EXPECT_EQ(nlohmann::json::parse(inspect_json.out)["depth"], 1);

  CliResult refuse = Kvctl(server_ + "evict --ns=" + ns + " " + first_key);
  EXPECT_EQ(refuse.exit_code, 1);
  EXPECT_NE(refuse.out.find("subtree"), std::string::npos) << refuse.out;
  CliResult dry = Kvctl(server_ + "evict --ns=" + ns + " " + first_key + " --subtree --dry-run");
  EXPECT_NE(dry.out.find("would evict 4 blocks"), std::string::npos) << dry.out;
  CliResult all = Kvctl(server_ + "evict --all");
  EXPECT_NE(all.out.find("evicted 4 blocks"), std::string::npos) << all.out;

  CliResult stats = Kvctl(server_ + "stats --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.out;
  nlohmann::json s = nlohmann::json::parse(stats.out);
  EXPECT_EQ(s["tiers"].size(), 3u);
  EXPECT_EQ(s["pinnedBytes"], "0");
  EXPECT_EQ(Kvctl(server_ + "health").out, "SERVING\n");
  EXPECT_EQ(nlohmann::json::parse(Kvctl(server_ + "health --json").out)["status"], "SERVING");
  CliResult get_json = Kvctl(server_ + "get --json --tokens=" + TmpPath("tokens.txt"));
  nlohmann::json g = nlohmann::json::parse(get_json.out);
  EXPECT_EQ(g["blocks"], 4);
  EXPECT_EQ(g["cachedBlocks"], 0);  // evicted above
}

// A live view: a header, then one row per interval with what happened in it.
// kvstored with TLS and tokens, as an operator starts it, and kvctl with
// the matching flags: refused without them, served with them, and a token
// revoked by SIGHUP refused from then on.
TEST_F(KvctlTest, TlsAndTokens) {
  const std::string dir = TmpPath("pki");
  std::filesystem::create_directories(dir);
  absl::StatusOr<PkiFiles> pki = MakePkiFiles(dir);
  ASSERT_TRUE(pki.ok()) << pki.status();
  auto hash = [](const std::string& token) {
    FILE* pipe = popen(("printf %s " + token + " | sha256sum").c_str(), "r");
    char out[65] = {};
    EXPECT_EQ(fread(out, 1, 64, pipe), 64u);
    pclose(pipe);
    return std::string(out, 64);
  };
  const std::string tokens = TmpPath("token-file");
  std::ofstream(tokens) << hash("ops-secret") << " ops admin\n"
                        << hash("team-secret") << " team write\n";
  std::ofstream(TmpPath("ops-token")) << "ops-secret\n";
  Start({"--host_capacity=64MiB", "--tls_cert=" + pki->server_cert,
         "--tls_key=" + pki->server_key, "--token_file=" + tokens});
  const std::string tls = "--tls_ca=" + pki->ca + " ";

  CliResult plain = Kvctl(server_ + "stats");
  EXPECT_NE(plain.exit_code, 0) << plain.out;
  CliResult anonymous = Kvctl(server_ + tls + "stats");
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_NE(anonymous.out.find("no credentials"), std::string::npos) << anonymous.out;

  CliResult put = Kvctl(server_ + tls + "--token=team-secret put --tokens=" +
                        TmpPath("tokens.txt") + " --payload=" + TmpPath("payload.bin"));
  ASSERT_EQ(put.exit_code, 0) << put.out;
  CliResult own = Kvctl(server_ + tls + "--token=team-secret ls --json");
  ASSERT_EQ(own.exit_code, 0) << own.out;
  EXPECT_EQ(nlohmann::json::parse(own.out)["prefixes"].size(), 1u) << own.out;
  // The admin sees nothing of its own, then team's blocks when it asks.
  CliResult admin_own = Kvctl(server_ + tls + "--token_file=" + TmpPath("ops-token") + " ls --json");
  ASSERT_EQ(admin_own.exit_code, 0) << admin_own.out;
  EXPECT_EQ(nlohmann::json::parse(admin_own.out).value("prefixes", nlohmann::json::array()).size(),
            0u)
      << admin_own.out;
  CliResult admin_team = Kvctl(server_ + tls + "--token_file=" + TmpPath("ops-token") +
                               " ls --tenant=team --json");
  ASSERT_EQ(admin_team.exit_code, 0) << admin_team.out;
  EXPECT_EQ(nlohmann::json::parse(admin_team.out)["prefixes"].size(), 1u);
  CliResult team_ops = Kvctl(server_ + tls + "--token=team-secret ls --tenant=ops");
  EXPECT_NE(team_ops.exit_code, 0);
  EXPECT_NE(team_ops.out.find("only an admin"), std::string::npos) << team_ops.out;

  // Revoke team's token and tell the daemon.
  std::ofstream(tokens) << hash("ops-secret") << " ops admin\n";
  ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
  CliResult revoked;
  for (int i = 0; i < 100; ++i) {
    revoked = Kvctl(server_ + tls + "--token=team-secret stats");
    if (revoked.exit_code != 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(revoked.out.find("unknown or revoked token"), std::string::npos) << revoked.out;
  EXPECT_EQ(Kvctl(server_ + tls + "--token=ops-secret stats").exit_code, 0);
}

TEST_F(KvctlTest, TopPrintsARowPerInterval) {
  CliResult top = Kvctl(server_ + "top --interval_ms=300 --count=3");
  EXPECT_EQ(top.exit_code, 0) << top.out;
  EXPECT_EQ(top.out.find("time"), 0u) << top.out;
  EXPECT_NE(top.out.find("lookups/s"), std::string::npos) << top.out;
  EXPECT_EQ(std::count(top.out.begin(), top.out.end(), '\n'), 4) << top.out;
  CliResult bad = Kvctl(server_ + "top --interval_ms=1");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("--interval_ms"), std::string::npos) << bad.out;
}

// --help answers with every flag, wherever it is defined: kvstored's live
// in kvstored_flags.cc, kvctl's security ones in kvctl_security.cc.
TEST_F(KvctlTest, HelpListsEveryFlag) {
  CliResult kvctl = Kvctl("--help");
  for (const char* flag : {"--server", "--token_file", "--tls_ca", "--etcd_user", "--tenant"}) {
    EXPECT_NE(kvctl.out.find(flag), std::string::npos) << flag << "\n" << kvctl.out;
  }
  CliResult kvstored = RunCommand("kvstore/kvstored --help");
  for (const char* flag : {"--host_capacity", "--tenant_quotas", "--token_file", "--etcd_user",
                           "--etcd_password_file", "--peer_token_file"}) {
    EXPECT_NE(kvstored.out.find(flag), std::string::npos) << flag << "\n" << kvstored.out;
  }
}

TEST_F(KvctlTest, ClearErrors) {
  CliResult bad_key = Kvctl(server_ + "inspect --ns=x zz");
  EXPECT_EQ(bad_key.exit_code, 1);
  EXPECT_NE(bad_key.out.find("not hex"), std::string::npos) << bad_key.out;
  CliResult unknown = Kvctl(server_ + "frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.out.find("unknown command"), std::string::npos) << unknown.out;
  CliResult missing = Kvctl(server_ + "inspect --ns=x 00ff");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("not cached"), std::string::npos) << missing.out;
  CliResult no_password = Kvctl("--etcd=127.0.0.1:1 --etcd_user=kvcache ls");
  EXPECT_EQ(no_password.exit_code, 1);
  EXPECT_NE(no_password.out.find("--etcd_user needs --etcd_password_file"), std::string::npos)
      << no_password.out;
  CliResult unreadable = Kvctl("--etcd=127.0.0.1:1 --etcd_user=kvcache --etcd_password_file=" +
                               TmpPath("no-such-file") + " ls");
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_NE(unreadable.out.find("--etcd_password_file: cannot read"), std::string::npos)
      << unreadable.out;
  ASSERT_EQ(daemon_->Stop(), 0);
  CliResult down = Kvctl(server_ + "stats");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.out.find("cannot reach kvstored at"), std::string::npos) << down.out;
  EXPECT_EQ(std::count(down.out.begin(), down.out.end(), '\n'), 1) << down.out;
}

// A 512 KiB host tier over NVMe: the put's 4 blocks pass the high watermark
// and 3 of them move to NVMe; stats, ls and get say so.
TEST_F(KvctlTest, ShowsTheNvmeTier) {
  ASSERT_EQ(daemon_->Stop(), 0);
  std::filesystem::remove_all(TmpPath("kvctl_nvme"));
  Start({"--host_capacity=512KiB", "--page_size=64KiB", "--nvme_dir=" + TmpPath("kvctl_nvme"),
         "--nvme_capacity=16MiB", "--spill_high=0.4", "--spill_low=0.2",
         "--tenant_quotas=default:nvme:8MiB,default:host:4MiB"});
  CliResult put = Kvctl(server_ + "put --tokens=" + TmpPath("tokens.txt") +
                        " --payload=" + TmpPath("payload.bin"));
  ASSERT_EQ(put.exit_code, 0) << put.out;
  CliResult stats;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    stats = Kvctl(server_ + "stats");
  } while (stats.out.find("nvme: spilled 0,") != std::string::npos && absl::Now() < give_up);
  // Usually 3 (down to the low watermark); fewer when a block was pinned as
  // the parent of the next put while the spiller ran.
  int spilled = 0;
  const size_t at = stats.out.find("nvme: spilled ");
  ASSERT_NE(at, std::string::npos) << stats.out;
  ASSERT_TRUE(
      absl::SimpleAtoi(stats.out.substr(at + 14, stats.out.find(',', at) - at - 14), &spilled));
  EXPECT_GE(spilled, 1);
  EXPECT_LE(spilled, 3);
  EXPECT_NE(stats.out.find("io_uring"), std::string::npos) << stats.out;  // the NVMe row's detail
  // The tenant's bytes per tier, with the bounds --tenant_quotas set.
  EXPECT_NE(stats.out.find("by tier: host "), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find(" of 4.0 MiB, nvme "), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find(" of 8.0 MiB"), std::string::npos) << stats.out;
  CliResult ls = Kvctl(server_ + "ls");
  EXPECT_NE(ls.out.find("host,nvme"), std::string::npos) << ls.out;
  CliResult get =
      Kvctl(server_ + "get --tokens=" + TmpPath("tokens.txt") + " --out=" + TmpPath("out.bin"));
  ASSERT_EQ(get.exit_code, 0) << get.out;
  // At least the spilled blocks; more if promoting them pushed the arena past
  // its high watermark again before the fetch pinned the rest.
  const size_t back = get.out.find(" read back from NVMe");
  ASSERT_NE(back, std::string::npos) << get.out;
  int read_back = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      get.out.substr(get.out.rfind(' ', back - 1) + 1, back - get.out.rfind(' ', back - 1) - 1),
      &read_back))
      << get.out;
  EXPECT_GE(read_back, spilled);
  std::stringstream got;
  got << std::ifstream(TmpPath("out.bin"), std::ios::binary).rdbuf();
  EXPECT_TRUE(got.str() == payload_) << "fetched bytes differ";
}

// The rows of `kvctl why`'s table: key (hex) and status, in chain order.
std::vector<std::pair<std::string, std::string>> WhyRows(const std::string& out) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string index, key, status;
    words >> index >> key;
    std::getline(words, status);
    if (index.empty() || !std::isdigit(static_cast<unsigned char>(index[0]))) continue;
    rows.push_back({key, status.substr(status.find_first_not_of(' '))});
  }
  return rows;
}

// Each reason kvctl why names, made to happen on a real daemon: never
// stored, evicted by pressure, evicted by kvctl, cached in another
// namespace, and (on NVMe) corrupted, its children with it.
TEST_F(KvctlTest, WhyNamesTheReasonOfEachMiss) {
  ASSERT_EQ(daemon_->Stop(), 0);
  Start({"--host_capacity=256KiB", "--page_size=64KiB"});  // room for one 4-block prompt
  const std::string a = "why --tokens=" + TmpPath("tokens.txt");
  std::ofstream(TmpPath("tokens_b.txt")) << [] {
    std::string s;
    for (int i = 101; i <= 164; ++i) s += std::to_string(i) + " ";
    return s;
  }();
  const std::string b = "why --tokens=" + TmpPath("tokens_b.txt");

  auto rows = WhyRows(Kvctl(server_ + a).out);
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& [key, status] : rows) EXPECT_EQ(status, "never_stored") << key;

  const std::string put = " --payload=" + TmpPath("payload.bin");
  ASSERT_EQ(Kvctl(server_ + "put --tokens=" + TmpPath("tokens.txt") + put).exit_code, 0);
  for (const auto& [key, status] : WhyRows(Kvctl(server_ + a).out)) EXPECT_EQ(status, "cached (host)");
  // B takes every page: A's blocks go, leaf first.
  ASSERT_EQ(Kvctl(server_ + "put --tokens=" + TmpPath("tokens_b.txt") + put).exit_code, 0);
  CliResult why_a = Kvctl(server_ + a);
  for (const auto& [key, status] : WhyRows(why_a.out)) {
    EXPECT_EQ(status.rfind("evicted_pressure at ", 0), 0u) << why_a.out;
  }

  rows = WhyRows(Kvctl(server_ + b).out);
  ASSERT_EQ(rows.size(), 4u);
  const std::string ns = nlohmann::json::parse(
      Kvctl(server_ + "get --json --tokens=" + TmpPath("tokens_b.txt")).out)["namespace"];
  ASSERT_EQ(Kvctl(server_ + "evict --ns=" + ns + " " + rows[2].first + " --subtree").exit_code, 0);
  CliResult why_b = Kvctl(server_ + b);
  rows = WhyRows(why_b.out);
  ASSERT_EQ(rows.size(), 4u) << why_b.out;
  EXPECT_EQ(rows[0].second, "cached (host)");
  EXPECT_EQ(rows[1].second, "cached (host)");
  EXPECT_EQ(rows[2].second.rfind("evicted_operator at ", 0), 0u) << why_b.out;
  EXPECT_EQ(rows[3].second.rfind("evicted_operator at ", 0), 0u) << why_b.out;

  CliResult elsewhere = Kvctl(server_ + "why --ns=elsewhere " + rows[0].first + " " + rows[3].first);
  rows = WhyRows(elsewhere.out);
  ASSERT_EQ(rows.size(), 2u) << elsewhere.out;
  EXPECT_EQ(rows[0].second, "wrong_namespace: cached in namespace \"" + ns + "\"");
  EXPECT_EQ(rows[1].second, "never_stored");  // evicted, but in B's namespace, not this one

  // A lookup of A stops at its first block, and is counted with its reason.
  Kvctl(server_ + "get --tokens=" + TmpPath("tokens.txt"));
  nlohmann::json stats = nlohmann::json::parse(Kvctl(server_ + "stats --json").out);
  std::map<std::string, int> lookup_misses;
  for (const auto& m : stats["misses"]) {
    if (m["op"] == "lookup") lookup_misses[m["reason"]] += std::stoi(m["count"].get<std::string>());
  }
  EXPECT_EQ(lookup_misses["evicted_pressure"], 1) << stats.dump();
  EXPECT_EQ(lookup_misses.size(), 1u) << stats.dump();  // why counts no miss

  // NVMe: every block spilled, the daemon restarted on the same directory,
  // and the data file's every sector damaged while it was down.
  ASSERT_EQ(daemon_->Stop(), 0);
  const std::string dir = TmpPath("kvctl_why_nvme");
  std::filesystem::remove_all(dir);
  const std::vector<std::string> nvme = {"--host_capacity=512KiB", "--page_size=64KiB",
                                         "--nvme_dir=" + dir, "--nvme_capacity=16MiB",
                                         "--spill_high=0.1", "--spill_low=0.01"};
  Start(nvme);
  ASSERT_EQ(Kvctl(server_ + "put --tokens=" + TmpPath("tokens.txt") + put).exit_code, 0);
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (Kvctl(server_ + a).out.find("cached (host") != std::string::npos && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (const auto& [key, status] : WhyRows(Kvctl(server_ + a).out)) ASSERT_EQ(status, "cached (nvme)");
  ASSERT_EQ(daemon_->Stop(), 0);
  {
    std::fstream data(dir + "/blocks.data", std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(data.good());
    const uint64_t size = std::filesystem::file_size(dir + "/blocks.data");
    for (uint64_t at = 100; at < size; at += 4096) {
      data.seekg(at);
      const char c = static_cast<char>(data.get());
      data.seekp(at);
      data.put(static_cast<char>(c ^ 0x5a));
    }
  }
  Start(nvme);
  for (const auto& [key, status] : WhyRows(Kvctl(server_ + a).out)) EXPECT_EQ(status, "cached (nvme)");
  Kvctl(server_ + "get --tokens=" + TmpPath("tokens.txt"));  // reads the first block: corrupt
  CliResult after = Kvctl(server_ + a);
  rows = WhyRows(after.out);
  ASSERT_EQ(rows.size(), 4u) << after.out;
  EXPECT_EQ(rows[0].second.rfind("integrity at ", 0), 0u) << after.out;
  for (int i = 1; i < 4; ++i) EXPECT_EQ(rows[i].second.rfind("parent_missing at ", 0), 0u) << after.out;
  stats = nlohmann::json::parse(Kvctl(server_ + "stats --json").out);
  int integrity = 0;
  for (const auto& m : stats["misses"]) {
    if (m["op"] == "fetch" && m["reason"] == "integrity") integrity += std::stoi(m["count"].get<std::string>());
  }
  EXPECT_EQ(integrity, 1) << stats.dump();
}

}  // namespace
}  // namespace kvcache
