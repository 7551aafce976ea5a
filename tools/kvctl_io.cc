// kvctl put / get: store and fetch a prompt's blocks by hand, through the
// client library, so a person can see a cache hit without writing code.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "client/cluster_client.h"
#include "common/byte_size.h"
#include "tools/kvctl_prompt.h"

ABSL_DECLARE_FLAG(int, timeout_s);
ABSL_DECLARE_FLAG(int, replicas);
ABSL_DECLARE_FLAG(std::string, tokens);
ABSL_DECLARE_FLAG(std::string, payload);
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int, tokens_per_block);
ABSL_DECLARE_FLAG(std::string, kv_dtype);
ABSL_DECLARE_FLAG(bool, json);

namespace kvcache {
namespace {

int Fail(const std::string& message) {
  std::cerr << "kvctl: " << message << "\n";
  return 1;
}

// One node through Client, or a cluster through ClusterClient (placing
// blocks as workers do), behind the three calls put and get make.
class Store {
 public:
  static absl::StatusOr<Store> Create(const std::vector<std::string>& addresses, bool cluster,
                                      const kvcache::ChannelSecurity& security) {
    ClientOptions options;
    options.security = security;
    options.address = addresses[0];
    options.deadline = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
    Store store;
    store.where_ =
        cluster ? absl::StrCat("the cluster of ", addresses.size(), " nodes") : addresses[0];
    if (cluster) {
      ClusterOptions c;
      c.peers = addresses;
      c.node = options;
      c.replicas = absl::GetFlag(FLAGS_replicas);
      absl::StatusOr<std::unique_ptr<ClusterClient>> client = ClusterClient::Create(c);
      if (!client.ok()) return client.status();
      store.cluster_ = std::move(*client);
    } else {
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
      if (!client.ok()) return client.status();
      store.node_ = std::move(*client);
    }
    return store;
  }

  const std::string& where() const { return where_; }

  // A block whose node could not be reached counts as not stored.
  absl::StatusOr<std::vector<v1::PutOutcome>> Put(const std::string& ns,
                                                  absl::Span<const PutBlock> blocks) {
    if (cluster_ != nullptr) return cluster_->Put(ns, BlockKey(), blocks);
    return node_->Put(ns, BlockKey(), blocks);
  }
  LookupResult Lookup(const std::string& ns, absl::Span<const BlockKey> keys) {
    return cluster_ != nullptr ? cluster_->Lookup(ns, keys) : node_->Lookup(ns, keys);
  }
  FetchResult Fetch(const std::string& ns, absl::Span<const FetchTarget> targets) {
    return cluster_ != nullptr ? cluster_->Fetch(ns, targets) : node_->Fetch(ns, targets);
  }

 private:
  std::string where_;
  std::unique_ptr<Client> node_;
  std::unique_ptr<ClusterClient> cluster_;
};

}  // namespace
}  // namespace kvcache

int KvctlPut(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security) {
  using namespace kvcache;
  absl::StatusOr<Prompt> prompt = LoadPrompt();
  if (!prompt.ok()) return Fail(std::string(prompt.status().message()));
  const std::string path = absl::GetFlag(FLAGS_payload);
  std::ifstream in(path, std::ios::binary);
  if (path.empty() || !in) return Fail("put needs --payload=FILE (a readable file)");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string payload = ss.str();
  const size_t n = prompt->keys.size();
  if (payload.empty() || payload.size() % n != 0) {
    return Fail(absl::StrCat("payload is ", payload.size(), " bytes; it must split evenly into ",
                             n, " blocks"));
  }
  const size_t per_block = payload.size() / n;
  std::vector<PutBlock> blocks;
  for (size_t i = 0; i < n; ++i) {
    blocks.push_back({prompt->keys[i], payload.substr(i * per_block, per_block)});
  }
  absl::StatusOr<Store> store = Store::Create(addresses, cluster, security);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  auto outcomes = store->Put(prompt->schema.NamespaceName(), blocks);
  if (!outcomes.ok()) {
    return Fail(absl::StrCat("put to ", store->where(), " failed: ", outcomes.status().message()));
  }
  size_t stored = 0, present = 0;
  for (auto o : *outcomes) {
    stored += o == v1::PUT_STORED;
    present += o == v1::PUT_ALREADY_CACHED;
  }
  std::cout << "namespace " << prompt->schema.NamespaceName() << "\n"
            << n << " blocks of " << FormatBytes(per_block) << ": " << stored << " stored, "
            << present << " already cached, " << (n - stored - present) << " not stored\n"
            << "first key " << prompt->keys[0].ToHex() << "\n";
  return stored + present == n ? 0 : 1;
}

int KvctlGet(const std::vector<std::string>& addresses, bool cluster,
             const kvcache::ChannelSecurity& security) {
  using namespace kvcache;
  absl::StatusOr<Prompt> prompt = LoadPrompt();
  if (!prompt.ok()) return Fail(std::string(prompt.status().message()));
  absl::StatusOr<Store> store = Store::Create(addresses, cluster, security);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  const std::string ns = prompt->schema.NamespaceName();
  LookupResult hit = store->Lookup(ns, prompt->keys);
  if (!hit.status.ok()) {
    return Fail(absl::StrCat("lookup at ", store->where(), " failed: ", hit.status.message()));
  }
  std::vector<std::string> buffers(hit.hits);
  std::vector<FetchTarget> targets;
  for (size_t i = 0; i < hit.hits; ++i) {
    buffers[i].resize(hit.sizes[i]);
    targets.push_back({prompt->keys[i],
                       absl::MakeSpan(reinterpret_cast<uint8_t*>(buffers[i].data()), hit.sizes[i])});
  }
  FetchResult got = store->Fetch(ns, targets);
  uint64_t bytes = 0;
  const size_t from_nvme = std::count(got.tiers.begin(), got.tiers.end(), v1::TIER_NVME);
  const std::string out_path = absl::GetFlag(FLAGS_out);
  std::ofstream out;
  if (!out_path.empty()) out.open(out_path, std::ios::binary);
  for (size_t i = 0; i < got.blocks; ++i) {
    bytes += buffers[i].size();
    if (out) out.write(buffers[i].data(), buffers[i].size());
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << absl::StrFormat(
        "{\"namespace\": \"%s\", \"blocks\": %d, \"cachedBlocks\": %d, "
        "\"fetchedBlocks\": %d, \"fetchedBytes\": %d, \"fromNvme\": %d, \"firstKey\": \"%s\"}\n",
        absl::CHexEscape(ns), prompt->keys.size(), hit.hits, got.blocks, bytes, from_nvme,
        prompt->keys[0].ToHex());
  } else {
    std::cout << "namespace " << ns << "\n"
              << "cached prefix: " << hit.hits << " of " << prompt->keys.size()
              << " blocks; fetched " << got.blocks << " (" << FormatBytes(bytes)
              << (from_nvme > 0 ? absl::StrCat(", ", from_nvme, " read back from NVMe") : "")
              << ", checksums verified)" << (out_path.empty() ? "" : ", written to " + out_path)
              << "\n";
  }
  if (!got.status.ok()) return Fail(std::string(got.status.message()));
  return 0;
}
