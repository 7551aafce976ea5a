// kvctl why: per block of a prompt's chain (or of keys given in hex),
// whether the daemon caches it and where, or why it does not.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "common/channel_security.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "tools/kvctl_format.h"
#include "tools/kvctl_prompt.h"

ABSL_DECLARE_FLAG(int, timeout_s);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::string, ns);
ABSL_DECLARE_FLAG(std::string, tokens);

namespace kvcache {
namespace {

int Fail(const std::string& message) {
  std::cerr << "kvctl: " << message << "\n";
  return 1;
}

// The request from --tokens (the prompt's chain, in its schema's namespace)
// or from --ns and hex keys.
absl::StatusOr<v1::WhyRequest> MakeRequest(const std::vector<char*>& args) {
  v1::WhyRequest request;
  if (!absl::GetFlag(FLAGS_tokens).empty()) {
    if (!args.empty()) return absl::InvalidArgumentError("why: --tokens or keys, not both");
    absl::StatusOr<Prompt> prompt = LoadPrompt();
    if (!prompt.ok()) return prompt.status();
    request.set_namespace_(prompt->schema.NamespaceName());
    for (const BlockKey& key : prompt->keys) request.add_keys(key.ToBytes());
    return request;
  }
  if (absl::GetFlag(FLAGS_ns).empty() || args.empty()) {
    return absl::InvalidArgumentError(
        "usage: kvctl why --tokens=FILE [schema flags] | kvctl why --ns=NS KEY_HEX...");
  }
  request.set_namespace_(absl::GetFlag(FLAGS_ns));
  for (const char* hex : args) {
    absl::StatusOr<BlockKey> key = BlockKey::FromHex(hex);
    if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat(hex, ": ", key.status().message()));
    request.add_keys(key->ToBytes());
  }
  return request;
}

}  // namespace
}  // namespace kvcache

int KvctlWhy(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security, const std::vector<char*>& args) {
  using namespace kvcache;
  absl::StatusOr<v1::WhyRequest> request = MakeRequest(args);
  if (!request.ok()) return Fail(std::string(request.status().message()));
  int rc = 0;
  for (const std::string& address : addresses) {
    auto stub = v1::KvCache::NewStub(*MakeChannel(address, security));  // main checked it
    grpc::ClientContext context;
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_s))));
    v1::WhyResponse response;
    if (grpc::Status s = stub->Why(&context, *request, &response); !s.ok()) {
      const bool down = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      Fail(absl::StrCat(down ? absl::StrCat("cannot reach kvstored at ", address, " (") : "",
                        s.error_message(), down ? "); is it running?" : ""));
      rc = 1;
      continue;
    }
    if (cluster) std::cout << (absl::GetFlag(FLAGS_json) ? "" : "node " + address + "\n");
    if (absl::GetFlag(FLAGS_json)) {
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.always_print_primitive_fields = true;
      (void)google::protobuf::util::MessageToJsonString(response, &json, options);
      std::cout << (cluster ? absl::StrCat("{\"address\": \"", address, "\", \"why\": ", json, "}")
                            : json)
                << "\n";
    } else {
      std::cout << FormatWhy(request->namespace_(), response);
    }
  }
  return rc;
}
