#include "tools/bench_median.h"
#include "tools/kvbench_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/bench_keys.h"
#include "tools/bench_rate.h"
#include "tools/daemon_process.h"

namespace kvcache {
namespace {

constexpr size_t kChainKeys = 1024;
constexpr size_t kShortChain = 64;
constexpr size_t kFetchBlocks = 16;
constexpr uint64_t kFetchBlockBytes = 1 << 20;

std::vector<BlockKey> Chain(uint32_t seed, size_t n) {
  return BenchChain("kvbench-metrics", seed, n);
}

// One GET of http://address/metrics; false if it did not answer 200.
bool Scrape(const std::string& address) {
  std::vector<std::string> host_port = absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (host_port.size() != 2 || !absl::SimpleAtoi(host_port[1], &port)) return false;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host_port[0].c_str(), &addr.sin_addr);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      std::string reply;
      char buf[16384];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, n);
      ok = reply.rfind("HTTP/1.1 200", 0) == 0 || reply.rfind("HTTP/1.0 200", 0) == 0;
    }
  }
  close(fd);
  return ok;
}

// One daemon and the clients the figures use.
struct Side {
  std::unique_ptr<DaemonProcess> daemon;
  std::unique_ptr<Client> remote;     // lookups and fetches on the data port
  std::unique_ptr<Client> same_host;  // leases (no block directory)
  std::string metrics_address;        // "" when off
};

absl::StatusOr<Side> StartSide(const std::string& kvstored, bool metrics_on) {
  // 1,024 one-byte blocks take a page each: 64 MiB of pages, and 16 MiB to fetch.
  std::vector<std::string> flags = {"--host_capacity=256MiB", "--page_size=64KiB"};
  if (metrics_on) {
    flags.push_back("--metrics_listen=127.0.0.1:0");
  } else {
    for (const char* f : {"--metrics_listen=off", "--request_metrics=false",
                          "--drop_record_entries=0"}) {
      flags.push_back(f);
    }
  }
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(kvstored, flags);
  if (!daemon.ok()) return daemon.status();
  Side side;
  side.daemon = std::move(*daemon);
  ClientOptions remote;
  remote.address = side.daemon->address();
  remote.use_local_path = false;
  ClientOptions local = remote;
  local.use_local_path = true;
  local.use_direct_reads = false;
  local.use_direct_lookups = false;
  absl::StatusOr<std::unique_ptr<Client>> r = Client::Create(remote);
  absl::StatusOr<std::unique_ptr<Client>> l = Client::Create(local);
  if (!r.ok()) return r.status();
  if (!l.ok()) return l.status();
  side.remote = std::move(*r);
  side.same_host = std::move(*l);
  if (metrics_on) {
    auto stub = v1::KvCache::NewStub(
        grpc::CreateChannel(side.daemon->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::StatsResponse stats;
    if (grpc::Status s = stub->Stats(&ctx, {}, &stats); !s.ok()) {
      return absl::UnavailableError(s.error_message());
    }
    side.metrics_address = stats.metrics_address();
    if (side.metrics_address.empty()) return absl::InternalError("the daemon serves no /metrics");
  }
  return side;
}

class MetricsCost {
 public:
  MetricsCost() : chain_(Chain(1, kChainKeys)), fetch_keys_(Chain(2, kFetchBlocks)) {
    half_missing_ = std::vector<BlockKey>(chain_.begin(), chain_.begin() + kShortChain / 2);
    const std::vector<BlockKey> tail = Chain(3, kShortChain / 2);  // never stored
    half_missing_.insert(half_missing_.end(), tail.begin(), tail.end());
    buffer_.resize(kFetchBlockBytes);
  }

  absl::Status Fill(Side& side) {
    std::vector<PutBlock> keys;
    for (const BlockKey& k : chain_) keys.push_back({k, "x"});
    if (auto r = side.remote->Put(ns_, BlockKey(), keys); !r.ok()) return r.status();
    std::vector<PutBlock> blocks;
    for (const BlockKey& k : fetch_keys_) blocks.push_back({k, std::string(kFetchBlockBytes, 'f')});
    if (auto r = side.remote->Put(ns_, BlockKey(), blocks); !r.ok()) return r.status();
    return absl::OkStatus();
  }

  // Every figure once against `side`, into samples[name].
  void Measure(Side& side, absl::Duration d, std::map<std::string, std::vector<double>>& samples) {
    samples["lookup_1024_keys_per_s"].push_back(Rate(1, d, [&](int) -> uint64_t {
      return side.remote->Lookup(ns_, chain_).hits == chain_.size() ? chain_.size() : 0;
    }));
    samples["lookup_64_with_miss_per_s"].push_back(Rate(1, d, [&](int) -> uint64_t {
      return side.remote->Lookup(ns_, half_missing_).hits == kShortChain / 2 ? 1 : 0;
    }));
    samples["fetch_dataport_gbps"].push_back(FetchRate(*side.remote, d) / 1e9);
    samples["fetch_samehost_lease_gbps"].push_back(FetchRate(*side.same_host, d) / 1e9);
  }

 private:
  double FetchRate(Client& client, absl::Duration d) {
    size_t i = 0;
    return Rate(1, d, [&](int) -> uint64_t {
      FetchTarget t{fetch_keys_[i++ % fetch_keys_.size()], {buffer_.data(), buffer_.size()}};
      return client.Fetch(ns_, {t}).blocks == 1 ? kFetchBlockBytes : 0;
    });
  }

  const std::string ns_ = "kvbench-metrics";
  std::vector<BlockKey> chain_, fetch_keys_, half_missing_;
  std::vector<uint8_t> buffer_;
};

}  // namespace

int RunMetricsCostBench(const std::string& kvstored, int runs, double seconds, bool json) {
  absl::StatusOr<Side> on = StartSide(kvstored, true);
  absl::StatusOr<Side> off = on.ok() ? StartSide(kvstored, false) : on.status();
  if (!on.ok() || !off.ok()) {
    std::cerr << "kvbench metrics: starting kvstored: "
              << (on.ok() ? off.status() : on.status()).message()
              << " (build it: bazel build --config=opt //kvstore:kvstored)\n";
    return 1;
  }
  MetricsCost bench;
  for (Side* side : {&*on, &*off}) {
    if (absl::Status s = bench.Fill(*side); !s.ok()) {
      std::cerr << "kvbench metrics: filling the cache: " << s.message() << "\n";
      return 1;
    }
  }
  // Prometheus' part: a scrape of the "on" daemon every second throughout.
  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0}, failed_scrapes{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      (Scrape(on->metrics_address) ? scrapes : failed_scrapes).fetch_add(1);
      for (int i = 0; i < 10 && !stop.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
    }
  });
  std::map<std::string, std::vector<double>> with, without;
  const absl::Duration d = absl::Seconds(seconds);
  for (int run = 0; run < runs; ++run) {
    // Alternate which goes first, so drift in the machine's speed falls on both.
    if (run % 2 == 0) {
      bench.Measure(*on, d, with);
      bench.Measure(*off, d, without);
    } else {
      bench.Measure(*off, d, without);
      bench.Measure(*on, d, with);
    }
    std::cerr << "kvbench metrics: round " << run + 1 << " of " << runs << "\n";
  }
  stop = true;
  scraper.join();
  std::vector<std::string> fields = {absl::StrFormat("\"runs\": %d", runs),
                                     absl::StrFormat("\"scrapes\": %d", scrapes.load()),
                                     absl::StrFormat("\"failed_scrapes\": %d", failed_scrapes.load())};
  std::string table = absl::StrFormat(
      "kvbench metrics: medians of %d rounds of %gs; /metrics scraped %d times (%d failed)\n\n"
      "%-28s %14s %14s %9s\n",
      runs, seconds, scrapes.load(), failed_scrapes.load(), "figure", "metrics on", "metrics off",
      "on / off");
  for (const auto& [name, values] : with) {
    const double a = Median(values), b = Median(without[name]);
    const double ratio = b > 0 ? a / b : 0;
    fields.push_back(absl::StrFormat("\"%s_on\": %.4g, \"%s_off\": %.4g, \"%s_ratio\": %.4f", name,
                                     a, name, b, name, ratio));
    absl::StrAppendFormat(&table, "%-28s %14.4g %14.4g %9.3f\n", name, a, b, ratio);
  }
  if (json) {
    std::cout << "{" << absl::StrJoin(fields, ", ") << "}\n";
  } else {
    std::cout << table;
  }
  return failed_scrapes.load() == 0 ? 0 : 1;
}

}  // namespace kvcache
