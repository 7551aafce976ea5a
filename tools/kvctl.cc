// kvctl: the kvcache operator CLI. `kvctl --help` lists commands and flags.
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
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
#include "tools/kvctl_format.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "kvstored address, host:port.");
ABSL_FLAG(bool, json, false, "Print read commands' results as JSON (proto3 JSON mapping).");
ABSL_FLAG(int, timeout_s, 5, "Deadline of each call, in seconds.");
ABSL_FLAG(std::string, ns, "",
          "Namespace (ls, inspect, evict). put/get derive it from the schema flags instead.");
ABSL_FLAG(bool, subtree, false, "evict: the key and all of its descendants.");
ABSL_FLAG(bool, all, false, "evict: everything.");
ABSL_FLAG(bool, dry_run, false, "evict: only count what would be dropped.");
ABSL_FLAG(int, limit, 100, "ls: rows per page.");
ABSL_FLAG(std::string, tokens, "", "put/get: file of whitespace-separated token ids.");
ABSL_FLAG(std::string, payload, "", "put: file whose bytes are split evenly over the blocks.");
ABSL_FLAG(std::string, out, "", "get: file to write the fetched blocks to, in order.");
ABSL_FLAG(std::string, model, "kvctl-demo", "put/get: key schema model id.");
ABSL_FLAG(int, tokens_per_block, 16, "put/get: key schema tokens per block.");
ABSL_FLAG(std::string, kv_dtype, "bf16", "put/get: key schema KV dtype.");

namespace kvcache {
namespace {

constexpr char kUsage[] = R"(kvctl: inspect and manage a kvstored cache.

Commands:
  kvctl stats                           per-tier capacity, use, hits, pinned/staged bytes
  kvctl ls [--ns=NS]                    cached prefixes (one row per chain root)
  kvctl inspect --ns=NS KEY             one block (KEY in hex)
  kvctl evict --ns=NS KEY [--subtree]   one leaf block, or a block and its descendants
  kvctl evict --ns=NS                   every block of a namespace
  kvctl evict --all                     everything
  kvctl put --tokens=F --payload=P      store a prompt's blocks (by hand, for trying things)
  kvctl get --tokens=F [--out=O]        look up and fetch a prompt's cached prefix
  kvctl health                          gRPC health check

All commands take --server (default 127.0.0.1:50051); read commands take --json;
evict takes --dry-run. Flags may be written with - or _ (--dry-run, --dry_run).
)";

int Fail(const std::string& message) {
  std::cerr << "kvctl: " << message << "\n";
  return 1;
}

// One line for a failed call; says plainly when the daemon is not there.
int FailCall(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(absl::StrCat("cannot reach kvstored at ", absl::GetFlag(FLAGS_server), " (",
                             s.error_message(), "); is it running?"));
  }
  return Fail(s.error_message());
}

void PrintJson(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, options);
  std::cout << json;
}

class Ctl {
 public:
  Ctl()
      : channel_(grpc::CreateChannel(absl::GetFlag(FLAGS_server),
                                     grpc::InsecureChannelCredentials())),
        stub_(v1::KvCache::NewStub(channel_)) {}

  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_s))));
    return ctx;
  }

  int Stats() {
    v1::StatsResponse r;
    if (grpc::Status s = stub_->Stats(Context().get(), {}, &r); !s.ok()) return FailCall(s);
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(r);
    } else {
      std::cout << FormatStats(r);
    }
    return 0;
  }

  int Ls() {
    v1::ListRequest req;
    req.set_namespace_(absl::GetFlag(FLAGS_ns));
    req.set_page_size(absl::GetFlag(FLAGS_limit));
    v1::ListResponse all;
    do {
      v1::ListResponse page;
      if (grpc::Status s = stub_->List(Context().get(), req, &page); !s.ok()) return FailCall(s);
      for (auto& p : page.prefixes()) *all.add_prefixes() = p;
      req.set_page_token(page.next_page_token());
    } while (!req.page_token().empty());
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(all);
    } else {
      std::cout << FormatPrefixes(all);
    }
    return 0;
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
    v1::InspectResponse r;
    if (grpc::Status s = stub_->Inspect(Context().get(), req, &r); !s.ok()) return FailCall(s);
    if (absl::GetFlag(FLAGS_json)) {
      PrintJson(r);
    } else {
      std::cout << FormatBlock(r);
    }
    return 0;
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
    v1::EvictResponse r;
    if (grpc::Status s = stub_->Evict(Context().get(), req, &r); !s.ok()) return FailCall(s);
    std::cout << (req.dry_run() ? "would evict " : "evicted ") << r.blocks() << " blocks ("
              << FormatBytes(r.bytes()) << ")\n";
    return 0;
  }

  int Health() {
    // grpc.health.v1.Health/Check with an empty request (the whole server);
    // the reply is HealthCheckResponse{status = 1 (SERVING)} on the wire.
    grpc::GenericStub generic(channel_);
    grpc::Slice empty;
    grpc::ByteBuffer request(&empty, 1), reply;
    auto ctx = Context();
    std::promise<grpc::Status> result;
    generic.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                      &reply, [&result](grpc::Status s) { result.set_value(std::move(s)); });
    const grpc::Status status = result.get_future().get();
    if (!status.ok()) return FailCall(status);
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    std::string bytes;
    for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    const bool serving = bytes == std::string("\x08\x01", 2);
    const char* state = serving ? "SERVING" : "NOT_SERVING";
    if (absl::GetFlag(FLAGS_json)) {
      std::cout << "{\"status\": \"" << state << "\"}\n";
    } else {
      std::cout << state << "\n";
    }
    return serving ? 0 : 1;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KvCache::Stub> stub_;
};

}  // namespace
}  // namespace kvcache

// Defined in kvctl_io.cc: put and get of a token file.
int KvctlPut();
int KvctlGet();

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
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  args.erase(args.begin());  // program name
  if (args.empty()) {
    std::cerr << kvcache::kUsage;
    return 2;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  kvcache::Ctl ctl;
  if (command == "stats") return ctl.Stats();
  if (command == "ls") return ctl.Ls();
  if (command == "inspect") return ctl.Inspect(args);
  if (command == "evict") return ctl.Evict(args);
  if (command == "health") return ctl.Health();
  if (command == "put") return KvctlPut();
  if (command == "get") return KvctlGet();
  std::cerr << "kvctl: unknown command '" << command << "'\n\n" << kvcache::kUsage;
  return 2;
}
