// kvctl: the kvcache operator CLI. `kvctl --help` lists commands and flags.
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "common/byte_size.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "tools/kvctl_cluster.h"
#include "tools/kvctl_format.h"
#include "tools/kvctl_security.h"
#include "tools/kvctl_top.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "kvstored address, host:port.");
ABSL_FLAG(std::string, peers, "",
          "A cluster: every node's host:port, comma-separated (instead of --server).");
ABSL_FLAG(std::string, etcd, "",
          "A cluster: etcd endpoints to read its members from (as kvstored --etcd).");
ABSL_FLAG(std::string, etcd_prefix, "/kvcache/nodes/", "etcd key prefix of the members.");
ABSL_FLAG(int, replicas, 2,
          "put/get on a cluster (--peers or --etcd): nodes each block is stored on and read "
          "from (the next one when a node fails), as the client library's default.");
ABSL_FLAG(bool, json, false, "Print read commands' results as JSON (proto3 JSON mapping).");
ABSL_FLAG(int, timeout_s, 5, "Deadline of each call, in seconds.");
ABSL_FLAG(std::string, ns, "",
          "Namespace (ls, inspect, evict, why). put/get/why --tokens derive it from the schema "
          "flags instead.");
ABSL_FLAG(bool, subtree, false, "evict: the key and all of its descendants.");
ABSL_FLAG(bool, all, false, "evict: everything.");
ABSL_FLAG(bool, dry_run, false, "evict: only count what would be dropped.");
ABSL_FLAG(int, limit, 100, "ls: rows per page.");
ABSL_FLAG(std::string, tenant, "",
          "ls/evict: act in this tenant instead of the token's own (an admin token only).");
ABSL_FLAG(std::string, tokens, "", "put/get/why: file of whitespace-separated token ids.");
ABSL_FLAG(std::string, payload, "", "put: file whose bytes are split evenly over the blocks.");
ABSL_FLAG(std::string, out, "", "get: file to write the fetched blocks to, in order.");
ABSL_FLAG(std::string, model, "kvctl-demo", "put/get/why: key schema model id.");
ABSL_FLAG(int, tokens_per_block, 16, "put/get/why: key schema tokens per block.");
ABSL_FLAG(std::string, kv_dtype, "bf16", "put/get/why: key schema KV dtype.");
ABSL_FLAG(int, interval_ms, 1000, "top: milliseconds between rows.");
ABSL_FLAG(int, count, 0, "top: rows to print, then exit; 0: until interrupted.");

namespace kvcache {
namespace {

constexpr char kUsage[] = R"(kvctl: inspect and manage a kvstored cache, one node or a cluster.

Commands:
  kvctl stats                           per-tier capacity, use, hits, pinned/staged bytes
  kvctl ls [--ns=NS]                    cached prefixes (one row per chain root)
  kvctl inspect --ns=NS KEY             one block (KEY in hex)
  kvctl evict --ns=NS KEY [--subtree]   one leaf block, or a block and its descendants
  kvctl evict --ns=NS                   every block of a namespace
  kvctl evict --all                     everything
  kvctl put --tokens=F --payload=P      store a prompt's blocks (by hand, for trying things)
  kvctl get --tokens=F [--out=O]        look up and fetch a prompt's cached prefix
  kvctl why --tokens=F                  per block of a prompt's chain: cached (and in
  kvctl why --ns=NS KEY...              which tiers), or why not: never_stored,
                                        evicted_pressure, evicted_operator, integrity,
                                        parent_missing, tier_disabled, or
                                        wrong_namespace (cached in another), and when
  kvctl health                          gRPC health check
  kvctl top [--interval_ms=1000] [--count=N]   live rates, hit ratio, bytes and
                                        latency (p50/p99 per path) of one node,
                                        a row per interval (Ctrl-C to stop)

One node: --server (default 127.0.0.1:50051). A cluster: --peers=A,B,C, or
--etcd=HOST:PORT to read the members kvstored --etcd registered there; then
stats shows each node and the total, ls merges the nodes' lists (NODES: how
many hold a root), inspect shows every copy, evict goes to every node, health
checks each, and put/get place blocks as ClusterClient does. Read commands
take --json; evict takes --dry-run. Flags may be written with - or _.
)";

int Fail(const std::string& message) {
  std::cerr << "kvctl: " << message << "\n";
  return 1;
}

bool Unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// One line for a failed call; says plainly when the daemon is not there.
std::string Describe(const std::string& address, const grpc::Status& s) {
  if (Unreachable(s)) {
    return absl::StrCat("cannot reach kvstored at ", address, " (", s.error_message(),
                        "); is it running?");
  }
  return s.error_message();
}

absl::Status ToStatus(const std::string& address, const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), Describe(address, s));
}

std::string Json(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, options);
  return json;
}

std::string Quoted(const std::string& s) { return "\"" + absl::CHexEscape(s) + "\""; }

// One daemon's admin calls, each with --timeout_s.
class Node {
 public:
  // REQUIRES: MakeChannel(address, security) succeeds (main checked it).
  Node(std::string address, const ChannelSecurity& security)
      : address_(std::move(address)),
        channel_(*MakeChannel(address_, security)),
        stub_(v1::KvCache::NewStub(channel_)) {}

  const std::string& address() const { return address_; }

  absl::StatusOr<v1::StatsResponse> Stats() {
    v1::StatsResponse r;
    if (grpc::Status s = stub_->Stats(Context().get(), {}, &r); !s.ok())
      return ToStatus(address_, s);
    return r;
  }

  // Every page of the list.
  absl::StatusOr<v1::ListResponse> List(const std::string& ns) {
    v1::ListRequest req;
    req.set_namespace_(ns);
    req.set_page_size(absl::GetFlag(FLAGS_limit));
    req.set_tenant(absl::GetFlag(FLAGS_tenant));
    v1::ListResponse all;
    do {
      v1::ListResponse page;
      if (grpc::Status s = stub_->List(Context().get(), req, &page); !s.ok()) {
        return ToStatus(address_, s);
      }
      for (auto& p : page.prefixes()) *all.add_prefixes() = p;
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty());
    return all;
  }

  absl::StatusOr<v1::InspectResponse> Inspect(const v1::InspectRequest& req) {
    v1::InspectResponse r;
    if (grpc::Status s = stub_->Inspect(Context().get(), req, &r); !s.ok()) {
      return ToStatus(address_, s);
    }
    return r;
  }

  absl::StatusOr<v1::EvictResponse> Evict(const v1::EvictRequest& req) {
    v1::EvictResponse r;
    if (grpc::Status s = stub_->Evict(Context().get(), req, &r); !s.ok()) {
      return ToStatus(address_, s);
    }
    return r;
  }

  // grpc.health.v1.Health/Check with an empty request (the whole server);
  // true when the reply is HealthCheckResponse{status = 1 (SERVING)}.
  absl::StatusOr<bool> Serving() {
    grpc::GenericStub generic(channel_);
    grpc::Slice empty;
    grpc::ByteBuffer request(&empty, 1), reply;
    auto ctx = Context();
    std::promise<grpc::Status> result;
    generic.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                      &reply, [&result](grpc::Status s) { result.set_value(std::move(s)); });
    const grpc::Status status = result.get_future().get();
    if (!status.ok()) return ToStatus(address_, status);
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    std::string bytes;
    for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    return bytes == std::string("\x08\x01", 2);
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(
        absl::ToChronoTime(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_s))));
    return ctx;
  }

  const std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
};

// Runs call(node) on every node in parallel; answers in node order.
template <typename Response, typename Call>
std::vector<NodeAnswer<Response>> OnEveryNode(std::vector<Node>& nodes, Call call) {
  std::vector<std::future<absl::StatusOr<Response>>> pending;
  for (Node& n : nodes)
    pending.push_back(std::async(std::launch::async, [&n, &call] { return call(n); }));
  std::vector<NodeAnswer<Response>> out;
  for (size_t i = 0; i < nodes.size(); ++i) out.push_back({nodes[i].address(), pending[i].get()});
  return out;
}

class Ctl {
 public:
  // One node (cluster false) or the cluster's members.
  Ctl(const std::vector<std::string>& addresses, bool cluster, const ChannelSecurity& security)
      : cluster_(cluster) {
    for (const std::string& a : addresses) nodes_.emplace_back(a, security);
  }

  // A row per interval of what one node did since the last (kvctl_top.h).
  int Top() {
    if (cluster_) return Fail("top watches one node: give it --server");
    const int interval_ms = absl::GetFlag(FLAGS_interval_ms);
    const int count = absl::GetFlag(FLAGS_count);
    if (interval_ms < 10 || count < 0) return Fail("top: --interval_ms >= 10 and --count >= 0");
    absl::StatusOr<v1::StatsResponse> before = nodes_[0].Stats();
    if (!before.ok()) return Fail(std::string(before.status().message()));
    absl::Time before_at = absl::Now();
    for (int row = 0; count == 0 || row < count; ++row) {
      if (row % 20 == 0) std::cout << TopHeader();
      absl::SleepFor(absl::Milliseconds(interval_ms));
      absl::StatusOr<v1::StatsResponse> now = nodes_[0].Stats();
      if (!now.ok()) return Fail(std::string(now.status().message()));
      const absl::Time now_at = absl::Now();
      std::cout << TopRow(*before, *now, absl::ToDoubleSeconds(now_at - before_at),
                          absl::FormatTime("%H:%M:%S", now_at, absl::LocalTimeZone()))
                << std::flush;
      before = std::move(now);
      before_at = now_at;
    }
    return 0;
  }

  int Stats() {
    auto answers = OnEveryNode<v1::StatsResponse>(nodes_, [](Node& n) { return n.Stats(); });
    if (!cluster_) {
      if (!answers[0].response.ok())
        return Fail(std::string(answers[0].response.status().message()));
      std::cout << (absl::GetFlag(FLAGS_json) ? Json(*answers[0].response)
                                              : FormatStats(*answers[0].response));
      return 0;
    }
    if (absl::GetFlag(FLAGS_json)) {
      std::vector<std::string> rows;
      for (const auto& a : answers) {
        rows.push_back(a.response.ok()
                           ? absl::StrCat("{\"address\": ", Quoted(a.address),
                                          ", \"stats\": ", Json(*a.response), "}")
                           : absl::StrCat("{\"address\": ", Quoted(a.address), ", \"error\": ",
                                          Quoted(std::string(a.response.status().message())), "}"));
      }
      std::cout << "{\"nodes\": [" << absl::StrJoin(rows, ",\n")
                << "],\n\"total\": " << Json(SumStats(answers)) << "}\n";
    } else {
      std::cout << FormatClusterStats(answers);
    }
    return ReportDown(answers);
  }

  int Ls() {
    const std::string ns = absl::GetFlag(FLAGS_ns);
    auto answers = OnEveryNode<v1::ListResponse>(nodes_, [&ns](Node& n) { return n.List(ns); });
    if (!cluster_) {
      if (!answers[0].response.ok())
        return Fail(std::string(answers[0].response.status().message()));
      std::cout << (absl::GetFlag(FLAGS_json) ? Json(*answers[0].response)
                                              : FormatPrefixes(*answers[0].response));
      return 0;
    }
    std::vector<int> holders;
    v1::ListResponse merged = MergePrefixes(answers, &holders);
    if (absl::GetFlag(FLAGS_json)) {
      std::cout << "{\"list\": " << Json(merged) << ", \"nodes\": [" << absl::StrJoin(holders, ", ")
                << "]}\n";
    } else {
      std::cout << FormatPrefixes(merged, holders);
    }
    return ReportDown(answers);
  }

  int Inspect(const std::vector<char*>& args) {
    if (args.size() != 1 || absl::GetFlag(FLAGS_ns).empty()) {
      return Fail("usage: kvctl inspect --ns=NAMESPACE KEY_HEX");
    }
    absl::StatusOr<BlockKey> key = BlockKey::FromHex(args[0]);
    if (!key.ok()) return Fail(std::string(key.status().message()));
    v1::InspectRequest req;
    req.set_namespace_(absl::GetFlag(FLAGS_ns));
    req.set_key(key->ToBytes());
    auto answers =
        OnEveryNode<v1::InspectResponse>(nodes_, [&req](Node& n) { return n.Inspect(req); });
    if (!cluster_) {
      if (!answers[0].response.ok())
        return Fail(std::string(answers[0].response.status().message()));
      std::cout << (absl::GetFlag(FLAGS_json) ? Json(*answers[0].response)
                                              : FormatBlock(*answers[0].response));
      return 0;
    }
    std::vector<std::string> copies;
    for (const auto& a : answers) {
      if (!a.response.ok()) continue;
      copies.push_back(
          absl::GetFlag(FLAGS_json)
              ? absl::StrCat("{\"address\": ", Quoted(a.address),
                             ", \"block\": ", Json(*a.response), "}")
              : absl::StrCat("node       ", a.address, "\n", FormatBlock(*a.response)));
    }
    if (absl::GetFlag(FLAGS_json)) {
      std::cout << "{\"copies\": [" << absl::StrJoin(copies, ",\n") << "]}\n";
    } else {
      std::cout << absl::StrJoin(copies, "\n");
    }
    if (copies.empty() && AllNotFound(answers)) {
      return Fail(absl::StrCat("block not found on any of the ", nodes_.size(), " nodes"));
    }
    return ReportDown(answers);
  }

  int Evict(const std::vector<char*>& args) {
    v1::EvictRequest req;
    const std::string ns = absl::GetFlag(FLAGS_ns);
    if (absl::GetFlag(FLAGS_all)) {
      req.set_all(true);
    } else if (args.size() == 1 && !ns.empty()) {
      absl::StatusOr<BlockKey> key = BlockKey::FromHex(args[0]);
      if (!key.ok()) return Fail(std::string(key.status().message()));
      v1::KeyRef* ref = absl::GetFlag(FLAGS_subtree) ? req.mutable_subtree() : req.mutable_key();
      ref->set_namespace_(ns);
      ref->set_key(key->ToBytes());
    } else if (args.empty() && !ns.empty()) {
      req.set_namespace_(ns);
    } else {
      return Fail("usage: kvctl evict (--ns=NS [KEY_HEX [--subtree]] | --all) [--dry-run]");
    }
    req.set_dry_run(absl::GetFlag(FLAGS_dry_run));
    req.set_tenant(absl::GetFlag(FLAGS_tenant));
    // In a cluster any node may hold a copy (a chain's first block is on
    // every node, and a key's owner changes with the member list): ask all.
    auto answers = OnEveryNode<v1::EvictResponse>(nodes_, [&req](Node& n) { return n.Evict(req); });
    if (!cluster_ && !answers[0].response.ok()) {
      return Fail(std::string(answers[0].response.status().message()));
    }
    uint64_t blocks = 0, bytes = 0;
    size_t answered = 0;
    for (const auto& a : answers) {
      if (!a.response.ok()) continue;
      ++answered;
      blocks += a.response->blocks();
      bytes += a.response->bytes();
    }
    if (cluster_ && answered == 0 && AllNotFound(answers)) {
      return Fail(absl::StrCat("block not found on any of the ", nodes_.size(), " nodes"));
    }
    std::cout << (req.dry_run() ? "would evict " : "evicted ") << blocks << " blocks ("
              << FormatBytes(bytes) << ")"
              << (cluster_ ? absl::StrCat(" on ", nodes_.size(), " nodes") : "") << "\n";
    return ReportDown(answers);
  }

  int Health() {
    auto answers = OnEveryNode<bool>(nodes_, [](Node& n) { return n.Serving(); });
    int rc = 0;
    std::vector<std::string> rows;
    for (const auto& a : answers) {
      if (!a.response.ok()) {
        if (!cluster_) return Fail(std::string(a.response.status().message()));
        rc = 1;
      } else if (!*a.response) {
        rc = 1;
      }
      const char* state = !a.response.ok() ? "UNREACHABLE"
                          : *a.response    ? "SERVING"
                                           : "NOT_SERVING";
      if (absl::GetFlag(FLAGS_json)) {
        rows.push_back(cluster_ ? absl::StrCat("{\"address\": ", Quoted(a.address),
                                               ", \"status\": \"", state, "\"}")
                                : absl::StrCat("{\"status\": \"", state, "\"}"));
      } else {
        rows.push_back(cluster_ ? absl::StrFormat("%-22s %s", a.address, state) : state);
      }
    }
    if (absl::GetFlag(FLAGS_json) && cluster_) {
      std::cout << "{\"nodes\": [" << absl::StrJoin(rows, ", ") << "]}\n";
    } else {
      std::cout << absl::StrJoin(rows, "\n") << "\n";
    }
    return rc;
  }

 private:
  // Names each node that did not answer (NOT_FOUND is an answer); 1 if any.
  template <typename Response>
  int ReportDown(const std::vector<NodeAnswer<Response>>& answers) {
    int rc = 0;
    for (const auto& a : answers) {
      if (a.response.ok() || absl::IsNotFound(a.response.status())) continue;
      std::cerr << "kvctl: node " << a.address << ": " << a.response.status().message() << "\n";
      rc = 1;
    }
    return rc;
  }

  template <typename Response>
  static bool AllNotFound(const std::vector<NodeAnswer<Response>>& answers) {
    for (const auto& a : answers) {
      if (!absl::IsNotFound(a.response.status())) return false;
    }
    return true;
  }

  const bool cluster_;
  std::vector<Node> nodes_;
};

}  // namespace
}  // namespace kvcache

// Defined in kvctl_io.cc: put and get of a token file.
int KvctlPut(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security);
int KvctlGet(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security);
// Defined in kvctl_why.cc.
int KvctlWhy(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security, const std::vector<char*>& args);

int main(int argc, char** argv) {
  // Accept --dry-run as well as --dry_run: absl flags only know underscores.
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    for (size_t j = 2; j < end; ++j) {
      if (argv[i][j] == '-') argv[i][j] = '_';
    }
  }
  absl::SetProgramUsageMessage(kvcache::kUsage);
  // --help lists the flags of every kvctl file (security, top, cluster),
  // not only this one's.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "tools/kvctl");
  };
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  args.erase(args.begin());  // program name
  if (args.empty()) {
    std::cerr << kvcache::kUsage;
    return 2;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  const bool cluster = !absl::GetFlag(FLAGS_peers).empty() || !absl::GetFlag(FLAGS_etcd).empty();
  std::vector<std::string> addresses = {absl::GetFlag(FLAGS_server)};
  if (cluster) {
    absl::StatusOr<kvcache::ChannelSecurity> etcd_security = kvcache::EtcdSecurityFromFlags();
    if (!etcd_security.ok()) return kvcache::Fail(std::string(etcd_security.status().message()));
    absl::StatusOr<std::vector<std::string>> members = kvcache::ClusterMembers(
        absl::GetFlag(FLAGS_peers), absl::GetFlag(FLAGS_etcd), absl::GetFlag(FLAGS_etcd_prefix),
        absl::Seconds(absl::GetFlag(FLAGS_timeout_s)), *etcd_security);
    if (!members.ok()) return kvcache::Fail(std::string(members.status().message()));
    addresses = std::move(*members);
  }
  absl::StatusOr<kvcache::ChannelSecurity> security = kvcache::SecurityFromFlags();
  if (!security.ok()) return kvcache::Fail(std::string(security.status().message()));
  for (const std::string& address : addresses) {
    if (auto channel = kvcache::MakeChannel(address, *security); !channel.ok()) {
      return kvcache::Fail(std::string(channel.status().message()));
    }
  }
  kvcache::Ctl ctl(addresses, cluster, *security);
  if (command == "stats") return ctl.Stats();
  if (command == "top") return ctl.Top();
  if (command == "ls") return ctl.Ls();
  if (command == "inspect") return ctl.Inspect(args);
  if (command == "evict") return ctl.Evict(args);
  if (command == "health") return ctl.Health();
  if (command == "put") return KvctlPut(addresses, cluster, *security);
  if (command == "get") return KvctlGet(addresses, cluster, *security);
  if (command == "why") return KvctlWhy(addresses, cluster, *security, args);
  std::cerr << "kvctl: unknown command '" << command << "'\n\n" << kvcache::kUsage;
  return 2;
}
