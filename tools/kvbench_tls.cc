#include "tools/kvbench_tls.h"

#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "common/tls_stream.h"
#include "tools/bench_buffers.h"
#include "tools/bench_keys.h"
#include "tools/bench_median.h"
#include "tools/bench_rate.h"
#include "tools/bench_references.h"
#include "tools/daemon_process.h"
#include "tools/pki_files.h"

namespace kvcache {
namespace {

constexpr size_t kBlock = 2 << 20;
constexpr size_t kBlocks = 16;  // 32 MiB fetched round robin
constexpr int kMaxStreams = 4;
constexpr char kToken[] = "kvbench-tls-token";

// One client per stream, each with one connection per path.
using Clients = std::vector<std::unique_ptr<Client>>;

absl::StatusOr<Clients> MakeClients(const std::string& address, const ChannelSecurity& security,
                                    bool data_port) {
  Clients clients;
  for (int t = 0; t < kMaxStreams; ++t) {
    ClientOptions options;
    options.address = address;
    options.fetch_streams = 1;
    options.use_local_path = false;
    options.use_data_port = data_port;
    options.security = security;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    if (!client.ok()) return client.status();
    clients.push_back(*std::move(client));
  }
  return clients;
}

double FetchGBps(Clients& clients, const std::vector<BlockKey>& keys, int streams,
                 absl::Duration d) {
  std::vector<AlignedBytes> buffers;
  for (int t = 0; t < streams; ++t) buffers.push_back(PageAligned(kBlock));
  std::vector<size_t> next(streams, 0);
  return Rate(streams, d, [&](int t) -> uint64_t {
           const BlockKey& key = keys[(next[t]++ + 4 * t) % keys.size()];
           FetchTarget target{key, {buffers[t].get(), kBlock}};
           return clients[t]->Fetch("kvbench-tls", {&target, 1}).blocks == 1 ? kBlock : 0;
         }) /
         1e9;
}

// Redis GET of one kBlock value over TLS connections.
absl::StatusOr<double> RedisTlsGetGBps(int port, const TlsContext& tls, int streams,
                                       absl::Duration d) {
  auto open_stream = [&]() -> std::unique_ptr<ByteStream> {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return nullptr;
    }
    absl::StatusOr<std::unique_ptr<ByteStream>> s = tls.Connect(fd, "127.0.0.1");
    return s.ok() ? *std::move(s) : nullptr;
  };
  std::vector<std::unique_ptr<ByteStream>> streams_open;
  for (int t = 0; t < streams; ++t) {
    streams_open.push_back(open_stream());
    if (streams_open.back() == nullptr) return absl::UnavailableError("redis TLS connect");
  }
  {
    std::string cmd = absl::StrCat("*3\r\n$3\r\nSET\r\n$5\r\nbench\r\n$", kBlock, "\r\n",
                                   std::string(kBlock, 'r'), "\r\n");
    iovec iov{cmd.data(), cmd.size()};
    char ok[5];
    if (!streams_open[0]->WriteFullV(&iov, 1) || !streams_open[0]->ReadFull(ok, 5)) {
      return absl::UnavailableError("redis TLS SET failed");
    }
  }
  const std::string get = "*2\r\n$3\r\nGET\r\n$5\r\nbench\r\n";
  const size_t reply = absl::StrCat("$", kBlock, "\r\n").size() + kBlock + 2;
  std::vector<std::string> buffers(streams, std::string(reply, '\0'));
  return Rate(streams, d, [&](int t) -> uint64_t {
           iovec iov{const_cast<char*>(get.data()), get.size()};
           if (!streams_open[t]->WriteFullV(&iov, 1)) return 0;
           return streams_open[t]->ReadFull(buffers[t].data(), reply) ? kBlock : 0;
         }) /
         1e9;
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace

int RunTlsBench(const std::string& kvstored, const std::string& redis_server, int runs,
                double seconds, bool json) {
  char dir_template[] = "/tmp/kvbench-tls-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  const std::string dir = dir_template;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  absl::StatusOr<PkiFiles> pki = MakePkiFiles(dir);
  if (!pki.ok()) {
    std::cerr << "kvbench tls: " << pki.status().message() << " (is openssl installed?)\n";
    return 1;
  }
  std::ofstream(dir + "/tokens") << Sha256Hex(kToken) << " bench write\n";
  const std::vector<std::string> common = {"--host_capacity=512MiB", "--local_socket=off",
                                           "--metrics_listen=off"};
  std::vector<std::string> tls_flags = common;
  for (const std::string& f : {"--tls_cert=" + pki->server_cert, "--tls_key=" + pki->server_key,
                               "--token_file=" + dir + "/tokens"}) {
    tls_flags.push_back(f);
  }
  auto plain_daemon = DaemonProcess::Start(kvstored, common);
  auto tls_daemon = DaemonProcess::Start(kvstored, tls_flags);
  if (!plain_daemon.ok() || !tls_daemon.ok()) {
    std::cerr << "kvbench tls: cannot start " << kvstored << "\n";
    return 1;
  }
  const RedisServer::Tls redis_tls{pki->server_cert, pki->server_key, pki->ca};
  auto redis = RedisServer::Start(redis_server, &redis_tls);
  if (!redis.ok()) {
    std::cerr << "kvbench tls: " << redis.status().message() << "\n";
    return 1;
  }
  ChannelSecurity security;
  security.tls_ca = pki->ca;
  security.token = kToken;
  auto plain = MakeClients((*plain_daemon)->address(), {}, true);
  auto tls = MakeClients((*tls_daemon)->address(), security, true);
  auto tls_grpc = MakeClients((*tls_daemon)->address(), security, false);
  auto redis_context = TlsContext::ForClient(pki->ca, "", "");
  if (!plain.ok() || !tls.ok() || !tls_grpc.ok() || !redis_context.ok()) {
    std::cerr << "kvbench tls: clients: "
              << (!tls.ok() ? tls.status() : plain.ok() ? redis_context.status() : plain.status())
              << "\n";
    return 1;
  }
  const std::vector<BlockKey> keys = BenchChain("kvbench-tls", 1, kBlocks);
  std::vector<PutBlock> blocks;
  for (const BlockKey& k : keys) blocks.push_back({k, std::string(kBlock, 'k')});
  for (Clients* c : {&*plain, &*tls}) {
    auto put = (*c)[0]->Put("kvbench-tls", BlockKey(), blocks);
    if (!put.ok()) {
      std::cerr << "kvbench tls: put: " << put.status() << "\n";
      return 1;
    }
  }
  const absl::Duration d = absl::Seconds(seconds);
  std::map<std::string, std::vector<double>> samples;
  for (int r = 0; r < runs; ++r) {
    for (int n : {1, kMaxStreams}) {
      const std::string s = absl::StrCat("_", n);
      samples["fetch_dataport_tls_gbps" + s].push_back(FetchGBps(*tls, keys, n, d));
      samples["fetch_dataport_plain_gbps" + s].push_back(FetchGBps(*plain, keys, n, d));
      samples["fetch_grpc_tls_gbps" + s].push_back(FetchGBps(*tls_grpc, keys, n, d));
      samples["redis_get_tls_gbps" + s].push_back(
          RedisTlsGetGBps((*redis)->port(), **redis_context, n, d).value_or(0));
    }
  }
  std::map<std::string, double> med;
  for (auto& [name, v] : samples) med[name] = Median(v);
  for (int n : {1, kMaxStreams}) {
    const std::string s = absl::StrCat("_", n);
    med["dataport_tls_vs_redis_tls" + s] =
        med["fetch_dataport_tls_gbps" + s] / med["redis_get_tls_gbps" + s];
    med["dataport_tls_vs_plain" + s] =
        med["fetch_dataport_tls_gbps" + s] / med["fetch_dataport_plain_gbps" + s];
  }
  if (json) {
    std::cout << "{";
    const char* sep = "";
    for (auto& [name, value] : med) {
      std::cout << sep << "\"" << name << "\": " << absl::StrFormat("%.4g", value);
      sep = ", ";
    }
    std::cout << "}\n";
    return 0;
  }
  std::cout << absl::StrFormat("kvbench tls: 2 MiB blocks, medians of %d rounds of %.1f s\n",
                               runs, seconds);
  std::cout << absl::StrFormat("%-40s %12s %12s\n", "", "1 stream", "4 streams");
  for (auto [label, key] : std::vector<std::pair<const char*, const char*>>{
           {"data port Fetch, TLS 1.3 + token (GB/s)", "fetch_dataport_tls_gbps"},
           {"data port Fetch, plaintext (GB/s)", "fetch_dataport_plain_gbps"},
           {"gRPC Fetch, TLS (GB/s)", "fetch_grpc_tls_gbps"},
           {"Redis GET over TLS (GB/s)", "redis_get_tls_gbps"},
           {"data port TLS / Redis TLS", "dataport_tls_vs_redis_tls"},
           {"data port TLS / plaintext", "dataport_tls_vs_plain"}}) {
    std::cout << absl::StrFormat("%-40s %12.2f %12.2f\n", label, med[absl::StrCat(key, "_1")],
                                 med[absl::StrCat(key, "_", kMaxStreams)]);
  }
  return 0;
}

}  // namespace kvcache
