// kvbench: kvcache speed, side by side with its references, in one run.
//
// Starts its own kvstored and redis-server on loopback, then for each of
// --runs rounds measures, with 1 and 4 streams: same-host Fetch of
// --block_size blocks, direct and by lease (1 block and an 8-block prefix per
// call, each in alternating slices with a plain memcpy of as many blocks)
// and Put by lease;
// Fetch and Put over the data port and over the gRPC stream alone, raw
// loopback TCP GB/s and Redis GET GB/s of the same values; and Lookup key
// checks/s in batches of 1,024 keys. Reports medians over the rounds:
// same-host Fetch as a ratio of memcpy, socket Fetch as a ratio of Redis.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "common/byte_size.h"
#include "common/huge_pages.h"
#include "tools/bench_buffers.h"
#include "tools/bench_median.h"
#include "tools/bench_keys.h"
#include "tools/bench_rate.h"
#include "tools/bench_references.h"
#include "tools/daemon_process.h"
#include "tools/kvbench_cluster.h"
#include "tools/kvbench_usage.h"
#include "tools/kvbench_engine.h"
#include "tools/kvbench_gpu.h"
#include "tools/kvbench_metrics.h"
#include "tools/kvbench_nvme.h"
#include "tools/kvbench_tls.h"
#include "tools/kvbench_report.h"
#include "tools/kvbench_trace.h"
#include "tools/progress_bar.h"

ABSL_FLAG(std::string, kvstored, "bazel-bin/kvstore/kvstored", "kvstored binary to start.");
ABSL_FLAG(std::string, redis_server, "/usr/bin/redis-server",
          "redis-server binary for the Redis reference; empty to skip it.");
ABSL_FLAG(std::string, block_size, "2MiB", "Block (and Redis value) size.");
ABSL_FLAG(int, runs, 5, "Rounds; every figure is the median over them.");
ABSL_FLAG(double, seconds, 1.0, "Length of each measurement.");
ABSL_FLAG(bool, json, false, "Print the medians as one JSON object.");
ABSL_DECLARE_FLAG(std::string, out);  // kvbench_trace.cc; here: results and bars
ABSL_FLAG(std::string, only, "",
          "Measure only these groups, comma-separated: samehost (fetches and put), put (the "
          "same-host put alone), socket (data port, gRPC, raw TCP, Redis), lookup. Empty: all.");

namespace kvcache {
namespace {

std::vector<BlockKey> Keys(uint32_t seed, size_t n) { return BenchChain("kvbench", seed, n); }

// Which way a client moves bytes: what it picks by itself on the daemon's
// host (direct reads through the block directory, leases for the rest), the
// same-host lease path alone (use_direct_reads off), the data port, or the
// gRPC stream alone. kSameHostRehashed also re-hashes every block in the
// client (verify_local_fetches, which takes leases), to show what that costs.
enum class Path { kSameHost, kSameHostLease, kSameHostRehashed, kDataPort, kGrpc };
constexpr Path kPaths[] = {Path::kSameHost, Path::kDataPort, Path::kGrpc};
const char* PathKey(Path p) {
  switch (p) {
    case Path::kSameHost: return "samehost";
    case Path::kSameHostLease:
      return "samehost_lease";
    case Path::kSameHostRehashed: return "samehost_rehashed";
    case Path::kDataPort: return "dataport";
    case Path::kGrpc: return "grpc";
  }
  return "?";
}

constexpr uint64_t kArenaBytes = 2ull << 30;
// Fetches (and the memcpy reference) cycle through this many distinct
// blocks: 128 MiB of 2 MiB blocks, well past the CPU's last-level cache, as a
// cache of many GiB is. With 16 (32 MiB) the memcpy reference ran from this
// machine's 32 MiB L3 while fetches could not.
constexpr size_t kFetchBlocks = 64;
// A prefix fetch: how many consecutive blocks one call asks for, as a worker
// fetching a cached prompt prefix does.
constexpr size_t kPrefixBlocks = 8;
constexpr size_t kChainKeys = 64;  // the engine-sized chain of the Lookup latency
// Same-host fetch and memcpy alternate in this many slices each, so both
// see the same machine: on a shared VM memcpy speed drifted by 1.5x between
// measurements a few seconds apart.
constexpr int kSideBySideSlices = 5;
constexpr uint64_t kArenaPageBytes = 256 << 10;
// Arena bytes the puts of one measurement may take (a block takes whole
// pages: a 4 KiB block takes a 256 KiB page).
constexpr uint64_t kPutBudgetBytes = kArenaBytes / 2;

class Bench {
 public:
  Bench(std::string address, size_t block) : address_(std::move(address)), block_(block) {
    KeySchema s;
    s.model_id = "kvbench";
    s.tokens_per_block = 1;
    ns_ = s.NamespaceName();
    admin_ = v1::KvCache::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    for (int t = 0; t < 4; ++t) {
      ClientOptions options;
      options.address = address_;
      options.fetch_streams = 1;
      clients_[Path::kSameHost].push_back(*Client::Create(options));
      options.use_direct_reads = false;
      clients_[Path::kSameHostLease].push_back(*Client::Create(options));
      options.verify_local_fetches = true;
      clients_[Path::kSameHostRehashed].push_back(*Client::Create(options));
      options.verify_local_fetches = false;
      options.use_local_path = false;
      clients_[Path::kDataPort].push_back(*Client::Create(options));
      options.use_data_port = false;
      clients_[Path::kGrpc].push_back(*Client::Create(options));
      payloads_.push_back(std::string(block, static_cast<char>('a' + t)));
      buffers_.push_back(PageAligned(block * kPrefixBlocks));
    }
  }

  // Each put is one root block with a fresh key, in a namespace of its own
  // that is dropped afterwards. At most half the arena is written per
  // measurement, so puts never evict the fetch and lookup sets.
  // `per_call` blocks per Put, as a chain (an engine puts a prefill's new
  // blocks at once). `from_put_buffer`: the payload lies in a put buffer
  // (same host only), as where an engine gathers its KV into one.
  double PutGBps(int streams, absl::Duration d, Path path, size_t per_call = 1,
                 bool from_put_buffer = false) {
    const std::string put_ns = ns_ + "/puts";
    auto& clients = clients_[path];
    std::atomic<int64_t> budget{static_cast<int64_t>(kPutBudgetBytes)};
    const int64_t footprint =
        static_cast<int64_t>((block_ + kArenaPageBytes - 1) / kArenaPageBytes * kArenaPageBytes);
    const double gbps =
        Rate(streams, d,
             [&](int t) -> uint64_t {
               const int64_t call_footprint = footprint * static_cast<int64_t>(per_call);
               if (budget.fetch_sub(call_footprint) < call_footprint) return 0;
               const std::vector<BlockKey> keys =
                   Keys(1000000 + t * 100000 + next_[t]++ * 16, per_call);
               // Borrowed, as an engine puts its KV pages: no copy of ours
               // into the request is timed as the put's.
               const absl::Span<const uint8_t> payload =
                   from_put_buffer ? absl::Span<const uint8_t>(PutBufferOf(t), block_)
                                   : absl::Span<const uint8_t>(
                                         reinterpret_cast<const uint8_t*>(payloads_[t].data()),
                                         payloads_[t].size());
               std::vector<PutBlock> blocks;
               for (const BlockKey& key : keys) blocks.push_back({key, {}, payload});
               auto r = clients[t]->Put(put_ns, BlockKey(), blocks);
               return r.ok() ? per_call * block_ : 0;
             }) /
        1e9;
    grpc::ClientContext ctx;
    v1::EvictRequest evict;
    evict.set_namespace_(put_ns);
    v1::EvictResponse evicted;
    (void)admin_->Evict(&ctx, evict, &evicted);
    return gbps;
  }

  // Stream t's put buffer: one block of its payload, in the daemon's
  // staging space (made before any timing, by PreparePutBuffers).
  const uint8_t* PutBufferOf(int t) const { return put_buffers_[t]->data(); }

  absl::Status PreparePutBuffers() {
    for (size_t t = 0; t < payloads_.size(); ++t) {
      absl::StatusOr<std::unique_ptr<PutBuffer>> buffer =
          clients_[Path::kSameHost][t]->NewPutBuffer(block_);
      if (!buffer.ok()) return buffer.status();
      std::memcpy((*buffer)->data(), payloads_[t].data(), block_);
      put_buffers_.push_back(std::move(*buffer));
    }
    return absl::OkStatus();
  }

  absl::Status PrepareFetch() {
    fetch_keys_ = Keys(7, kFetchBlocks);
    std::vector<PutBlock> blocks;
    for (const BlockKey& k : fetch_keys_) blocks.push_back({k, payloads_[0]});
    for (size_t b = 0; b < fetch_keys_.size(); ++b) {
      memcpy_sources_.push_back(HugePageAligned(block_));
      std::memcpy(memcpy_sources_.back().get(), payloads_[0].data(), block_);
    }
    auto r = clients_[Path::kSameHost][0]->Put(ns_, BlockKey(), blocks);
    return r.ok() ? absl::OkStatus() : r.status();
  }

  // `per_call` consecutive blocks per call, into the caller's buffer.
  double FetchGBps(int streams, absl::Duration d, Path path, size_t per_call = 1) {
    std::vector<size_t> i(4, 0);
    auto& clients = clients_[path];
    return Rate(streams, d, [&](int t) -> uint64_t {
      std::vector<FetchTarget> targets;
      const size_t first = (i[t]++ * per_call + 4 * t) % fetch_keys_.size();
      for (size_t b = 0; b < per_call; ++b) {
        uint8_t* dest = buffers_[t].get() + b * block_;
        targets.push_back({fetch_keys_[(first + b) % fetch_keys_.size()], {dest, block_}});
      }
      FetchResult r = clients[t]->Fetch(ns_, targets);
      return r.blocks == per_call ? per_call * block_ : 0;
    }) / 1e9;
  }

  // Same-host fetch next to memcpy of the same number of blocks, in
  // alternating slices; returns {fetch GB/s, memcpy GB/s}.
  std::pair<double, double> SideBySide(int streams, absl::Duration d, Path path,
                                       size_t per_call) {
    double fetch = 0, copy = 0;
    const absl::Duration slice = d / (2 * kSideBySideSlices);
    for (int i = 0; i < kSideBySideSlices; ++i) {
      fetch += FetchGBps(streams, slice, path, per_call) / kSideBySideSlices;
      copy += MemcpyGBps(streams, slice, per_call) / kSideBySideSlices;
    }
    return {fetch, copy};
  }

  // Same-host Put of `per_call`-block chains next to memcpy of as many
  // blocks, in alternating slices like the fetches; {put GB/s, memcpy GB/s}.
  std::pair<double, double> PutSideBySide(int streams, absl::Duration d, size_t per_call,
                                          bool from_put_buffer) {
    double put = 0, copy = 0;
    const absl::Duration slice = d / (2 * kSideBySideSlices);
    for (int i = 0; i < kSideBySideSlices; ++i) {
      put += PutGBps(streams, slice, Path::kSameHost, per_call, from_put_buffer) /
             kSideBySideSlices;
      copy += MemcpyGBps(streams, slice, per_call) / kSideBySideSlices;
    }
    return {put, copy};
  }

  absl::Status PrepareLookup() {
    lookup_keys_ = Keys(11, 1024);
    std::vector<PutBlock> blocks;
    for (const BlockKey& k : lookup_keys_) blocks.push_back({k, "x"});
    auto r = clients_[Path::kSameHost][0]->Put(ns_, BlockKey(), blocks);
    if (!r.ok()) return r.status();
    // A fetch tells each same-host client the namespace's id, which its
    // lookups from the block directory need.
    for (auto& c : clients_[Path::kSameHost]) {
      uint8_t byte;
      if (c->Fetch(ns_, {FetchTarget{lookup_keys_[0], {&byte, 1}}}).blocks != 1) {
        return absl::InternalError("lookup chain not fetched back");
      }
    }
    return absl::OkStatus();
  }

  // The same-host reference: a plain memcpy of the same bytes into the same
  // buffer, cycling through as many distinct blocks as the fetches do (so
  // both read from memory, not from a cache-hot copy).
  double MemcpyGBps(int streams, absl::Duration d, size_t per_call) {
    std::vector<size_t> i(4, 0);
    return Rate(streams, d, [&](int t) -> uint64_t {
      const size_t first = (i[t]++ * per_call + 4 * t) % memcpy_sources_.size();
      for (size_t b = 0; b < per_call; ++b) {
        const uint8_t* from = memcpy_sources_[(first + b) % memcpy_sources_.size()].get();
        std::memcpy(buffers_[t].get() + b * block_, from, block_);
      }
      return per_call * block_;
    }) / 1e9;
  }

  // The share of same-host fetched blocks that came through the directory.
  double DirectShare() {
    uint64_t direct = 0, fetched = 0;
    for (auto& c : clients_[Path::kSameHost]) {
      direct += c->counters().local_direct_reads;
      fetched += c->counters().fetched_bytes / block_;
    }
    return fetched == 0 ? 0 : static_cast<double>(direct) / fetched;
  }

  // Median latency of a Lookup of a 64-key cached chain by the clients of
  // `path`: kSameHost (the block directory, no round trip), kDataPort (a
  // remote worker: the data port) or kGrpc (a remote worker without it).
  double LookupChainP50Micros(Path path, absl::Duration d) {
    Client& client = *clients_[path][0];
    const absl::Span<const BlockKey> chain(lookup_keys_.data(), kChainKeys);
    std::vector<double> micros;
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end || micros.size() < 10) {
      const absl::Time start = absl::Now();
      LookupResult r = client.Lookup(ns_, chain);
      micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
      if (r.hits != kChainKeys) return -1;
    }
    std::nth_element(micros.begin(), micros.begin() + micros.size() / 2, micros.end());
    return micros[micros.size() / 2];
  }

  // Key checks per second of 1,024-key lookups by the clients of `path`.
  double LookupKeysPerSecond(int threads, absl::Duration d, Path path) {
    return Rate(threads, d, [&](int t) -> uint64_t {
      LookupResult r = clients_[path][t]->Lookup(ns_, lookup_keys_);
      return r.hits == lookup_keys_.size() ? lookup_keys_.size() : 0;
    });
  }

  // The lookup keys as Redis keys: 33 bytes, as a namespace byte and the key.
  std::vector<std::string> RedisKeys(size_t count) const {
    std::vector<std::string> keys;
    for (size_t i = 0; i < count && i < lookup_keys_.size(); ++i) {
      keys.push_back("n" + lookup_keys_[i].ToBytes());
    }
    return keys;
  }

 private:
  std::string address_;
  size_t block_;
  std::string ns_;
  std::map<Path, std::vector<std::unique_ptr<Client>>> clients_;
  std::unique_ptr<v1::KvCache::Stub> admin_;
  std::vector<std::string> payloads_;
  std::vector<std::unique_ptr<PutBuffer>> put_buffers_;  // one per stream, made on first use
  // Fetch destinations and memcpy sources are page-aligned, as a worker's
  // pinned buffers and the arena's pages are. (glibc's memcpy picks its
  // method by the two pointers' offsets within a page; aligned to aligned is
  // its fast case.)
  std::vector<AlignedBytes> buffers_, memcpy_sources_;
  std::vector<BlockKey> fetch_keys_, lookup_keys_;
  uint32_t next_[4] = {0, 0, 0, 0};
};

int Run() {
  absl::StatusOr<uint64_t> block = ParseByteSize(absl::GetFlag(FLAGS_block_size));
  if (!block.ok()) {
    std::cerr << "kvbench: --block_size: " << block.status().message() << "\n";
    return 2;
  }
  const absl::Duration d = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  auto daemon = DaemonProcess::Start(absl::GetFlag(FLAGS_kvstored),
                                     {absl::StrCat("--host_capacity=", kArenaBytes),
                                      absl::StrCat("--page_size=", kArenaPageBytes)});
  if (!daemon.ok()) {
    std::cerr << "kvbench: starting kvstored: " << daemon.status().message()
              << " (build it: bazel build --config=opt //kvstore:kvstored)\n";
    return 1;
  }
  std::unique_ptr<RedisServer> redis;
  if (!absl::GetFlag(FLAGS_redis_server).empty()) {
    auto r = RedisServer::Start(absl::GetFlag(FLAGS_redis_server));
    if (!r.ok()) {
      std::cerr << "kvbench: " << r.status().message() << "; skipping the Redis reference\n";
    } else {
      redis = std::move(*r);
    }
  }
  Bench bench((*daemon)->address(), *block);
  if (absl::Status s = bench.PrepareFetch(); !s.ok()) {
    std::cerr << "kvbench: preparing fetch blocks: " << s.message() << "\n";
    return 1;
  }
  if (absl::Status s = bench.PrepareLookup(); !s.ok()) {
    std::cerr << "kvbench: preparing lookup chain: " << s.message() << "\n";
    return 1;
  }
  // Without them (no same-host path) only the put-buffer rows are left out.
  const absl::Status put_buffers = bench.PreparePutBuffers();
  if (!put_buffers.ok()) {
    std::cerr << "kvbench: no put buffers (" << put_buffers.message()
              << "); their rows read 0\n";
  }
  const std::string only = absl::GetFlag(FLAGS_only);
  auto wanted = [&](const char* group) {
    return only.empty() ||
           absl::StrContains(absl::StrCat(",", only, ","), absl::StrCat(",", group, ","));
  };
  std::map<std::string, std::vector<double>> samples;
  const int runs = absl::GetFlag(FLAGS_runs);
  ProgressBar progress("kvbench rounds", runs);
  progress.Update(0);
  for (int run = 0; run < runs; ++run) {
    for (int n : {1, 4}) {
      const std::string s = absl::StrCat("_", n);
      if (wanted("samehost")) {
        // Ratios are taken per round, from side-by-side slices.
        struct Case {
          const char* name;
          Path path;
          size_t per_call;
        };
        for (const Case& c :
             {Case{"samehost", Path::kSameHost, 1}, Case{"samehost_lease", Path::kSameHostLease, 1},
              Case{"samehost_prefix", Path::kSameHost, kPrefixBlocks},
              Case{"samehost_lease_prefix", Path::kSameHostLease, kPrefixBlocks},
              Case{"samehost_rehashed", Path::kSameHostRehashed, 1}}) {
          auto [fetch, copy] = bench.SideBySide(n, d, c.path, c.per_call);
          samples[absl::StrCat("fetch_", c.name, "_gbps", s)].push_back(fetch);
          samples[absl::StrCat("memcpy_for_", c.name, "_gbps", s)].push_back(copy);
          samples[absl::StrCat("fetch_", c.name, "_vs_memcpy", s)].push_back(fetch / copy);
        }
      }
      if (wanted("samehost") || wanted("put")) {
        struct Case {
          const char* name;
          size_t per_call;
          bool from_put_buffer;
        };
        for (const Case& c : {Case{"", 1, false}, Case{"_chain", kPrefixBlocks, false},
                              Case{"_buffer", 1, true}, Case{"_buffer_chain", kPrefixBlocks, true}}) {
          if (c.from_put_buffer && !put_buffers.ok()) continue;
          const char* name = c.name;
          auto [put, copy] = bench.PutSideBySide(n, d, c.per_call, c.from_put_buffer);
          samples[absl::StrCat("put_samehost", name, "_gbps", s)].push_back(put);
          samples[absl::StrCat("memcpy_for_put", name, "_gbps", s)].push_back(copy);
          samples[absl::StrCat("put_samehost", name, "_vs_memcpy", s)].push_back(put / copy);
        }
      }
      for (Path p : kPaths) {
        if (p == Path::kSameHost || !wanted("socket")) continue;
        samples[absl::StrCat("fetch_", PathKey(p), "_gbps", s)].push_back(bench.FetchGBps(n, d, p));
        samples[absl::StrCat("put_", PathKey(p), "_gbps", s)].push_back(bench.PutGBps(n, d, p));
      }
      if (!wanted("socket")) continue;
      samples["tcp_gbps" + s].push_back(RawTcpGBps(*block, n, d).value_or(0));
      if (redis) samples["redis_get_gbps" + s].push_back(RedisGetGBps(redis->port(), *block, n, d).value_or(0));
    }
    for (int n : {1, 2}) {
      if (!wanted("lookup")) break;
      samples[absl::StrCat("lookup_keys_per_s_", n)].push_back(
          bench.LookupKeysPerSecond(n, d, Path::kSameHost));
      for (Path p : {Path::kDataPort, Path::kGrpc}) {
        samples[absl::StrCat("lookup_", PathKey(p), "_keys_per_s_", n)].push_back(
            bench.LookupKeysPerSecond(n, d, p));
      }
      if (redis) {
        samples[absl::StrCat("redis_exists_keys_per_s_", n)].push_back(
            RedisExistsKeysPerSecond(redis->port(), bench.RedisKeys(SIZE_MAX), n, d).value_or(0));
      }
    }
    if (wanted("lookup")) {
      samples["lookup_chain64_p50_us_direct"].push_back(
          bench.LookupChainP50Micros(Path::kSameHost, d / 2));
      for (Path p : {Path::kDataPort, Path::kGrpc}) {
        samples[absl::StrCat("lookup_chain64_p50_us_", PathKey(p))].push_back(
            bench.LookupChainP50Micros(p, d / 2));
      }
      if (redis) {
        samples["redis_exists64_p50_us"].push_back(
            RedisExistsP50Micros(redis->port(), bench.RedisKeys(64), d / 2).value_or(0));
        // The same client wait as our Lookup's: the daemons side by side.
        samples["redis_exists64_spin_p50_us"].push_back(
            RedisExistsP50Micros(redis->port(), bench.RedisKeys(64), d / 2,
                                 ClientOptions().lookup_spin)
                .value_or(0));
      }
    }
    progress.Update(run + 1);
  }
  std::map<std::string, double> med;
  for (auto& [name, v] : samples) med[name] = Median(v);
  if (wanted("samehost")) med["samehost_direct_share"] = bench.DirectShare();
  if (redis && wanted("lookup")) {
    // Key checks side by side with Redis EXISTS of as many keys of 33 bytes.
    for (const char* n : {"_1", "_2"}) {
      const std::string k = n;
      med["lookup_vs_redis_exists" + k] =
          med["lookup_keys_per_s" + k] / med["redis_exists_keys_per_s" + k];
      for (const char* p : {"dataport", "grpc"}) {
        med[absl::StrCat("lookup_", p, "_vs_redis_exists", k)] =
            med[absl::StrCat("lookup_", p, "_keys_per_s", k)] / med["redis_exists_keys_per_s" + k];
      }
    }
  }
  for (const char* n : {"_1", "_4"}) {
    const std::string k = n;
    if (redis && wanted("socket")) {
      med["fetch_dataport_vs_redis" + k] = med["fetch_dataport_gbps" + k] / med["redis_get_gbps" + k];
      med["fetch_grpc_vs_redis" + k] = med["fetch_grpc_gbps" + k] / med["redis_get_gbps" + k];
    }
  }
  std::vector<std::string> fields = {
      absl::StrFormat("\"block_bytes\": %d", *block), absl::StrFormat("\"runs\": %d", runs),
      absl::StrFormat("\"seconds_each\": %g", absl::GetFlag(FLAGS_seconds))};
  for (auto& [name, v] : med) fields.push_back(absl::StrFormat("\"%s\": %.4g", name, v));
  const std::string json = absl::StrCat("{", absl::StrJoin(fields, ", "), "}");
  if (const std::string out = absl::GetFlag(FLAGS_out); !out.empty()) {
    absl::Status s = WriteBenchBars(med, json, out);
    if (!s.ok()) {
      std::cerr << "kvbench: --out: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "kvbench: wrote kvbench_results.json and kvbench_bars.png to " << out << "\n";
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << json << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("kvbench: %s blocks, medians of %d rounds of %gs each\n\n",
                               FormatBytes(*block), runs, absl::GetFlag(FLAGS_seconds));
  PrintBenchTable(med,
                  {wanted("samehost"), wanted("samehost") || wanted("put"), wanted("socket"),
                   wanted("lookup"), redis != nullptr},
                  kPrefixBlocks);
  return 0;
}

}  // namespace
}  // namespace kvcache


int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "engine") return kvcache::RunEngineBench(argc, argv);
  absl::SetProgramUsageMessage(kvcache::kKvbenchUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1 && std::string(args[1]) == "cluster") {
    return kvcache::RunClusterBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1 && std::string(args[1]) == "tls") {
    return kvcache::RunTlsBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_redis_server),
                                absl::GetFlag(FLAGS_runs), absl::GetFlag(FLAGS_seconds),
                                absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1 && std::string(args[1]) == "nvme") {
    return kvcache::RunNvmeBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_runs),
                                 absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1 && std::string(args[1]) == "metrics") {
    return kvcache::RunMetricsCostBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_runs),
                                        absl::GetFlag(FLAGS_seconds), absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1 && std::string(args[1]) == "gpu") {
    return kvcache::RunGpuBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_runs),
                                absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1 && std::string(args[1]) == "trace") {
    return kvcache::RunTraceBench(absl::GetFlag(FLAGS_kvstored), absl::GetFlag(FLAGS_json));
  }
  if (args.size() > 1) {
    std::cerr << "kvbench: unknown command " << args[1] << " (try --help)\n";
    return 2;
  }
  return kvcache::Run();
}
