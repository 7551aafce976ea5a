#include "tools/bench_median.h"
#include "tools/kvbench_nvme.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "key/checksum.h"
#include "common/byte_size.h"
#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "offload/nvme_store.h"
#include "tools/daemon_process.h"

ABSL_FLAG(std::string, nvme_bench_dir, "/var/tmp/kvbench_nvme",
          "nvme: directory on the drive to measure (not tmpfs); the store and fio's file go "
          "there and are removed afterwards.");
ABSL_FLAG(std::string, nvme_bench_bytes, "512MiB", "nvme: bytes written and read per round.");
ABSL_FLAG(std::string, nvme_bench_block, "2MiB", "nvme: block size (fio's bs).");
ABSL_FLAG(std::string, nvme_bench_page, "256KiB",
          "nvme: arena page size: each block is written from and read into pieces this big.");
ABSL_FLAG(int, nvme_bench_qd, 8, "nvme: queue depth (blocks in flight; fio's iodepth).");
ABSL_FLAG(int, nvme_restart_blocks, 100000,
          "nvme: also time a kvstored restart that indexes this many NVMe blocks (4 KiB each, "
          "in chains of 100); 0 skips it.");

namespace kvcache {
namespace {

using Aligned = std::unique_ptr<uint8_t[], decltype(&std::free)>;

uint64_t SizeFlagOrDie(const absl::Flag<std::string>& flag, const char* name) {
  absl::StatusOr<uint64_t> v = ParseByteSize(absl::GetFlag(flag));
  if (!v.ok() || *v == 0 || *v % 4096 != 0) {
    std::cerr << "kvbench: --" << name << " must be a positive multiple of 4 KiB\n";
    std::exit(2);
  }
  return *v;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Runs fio once; returns GB/s, or a negative number if it failed.
double RunFio(const std::string& file, bool write, uint64_t bytes, uint64_t block, int qd) {
  const std::string cmd = absl::StrFormat(
      "fio --name=kvbench --filename=%s --size=%d --bs=%d --iodepth=%d --ioengine=io_uring "
      "--direct=1 --rw=%s --output-format=json 2>/dev/null",
      file, bytes, block, qd, write ? "write" : "read");
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) out.append(buf, n);
  if (pclose(pipe) != 0) return -1;
  // The direction that ran has the only non-zero "bw_bytes".
  double best = -1;
  for (size_t at = 0; (at = out.find("\"bw_bytes\"", at)) != std::string::npos; ++at) {
    const size_t colon = out.find(':', at);
    if (colon != std::string::npos) best = std::max(best, std::atof(out.c_str() + colon + 1));
  }
  return best / 1e9;
}

struct RestartResult {
  double serving_seconds = 0;  // spawn to serving
  double index_seconds = 0;    // the daemon's own figure for indexing
  uint64_t restored = 0;
  uint32_t chain_hits = 0;  // of one 100-block chain looked up afterwards
};

// Writes `n` 4 KiB blocks (chains of 100) into a store as kvstored would,
// then starts kvstored on it and times how long until it serves them.
absl::StatusOr<RestartResult> TimeRestart(const std::string& kvstored, const std::string& dir,
                                          uint64_t n) {
  constexpr uint64_t kPayload = 4096, kChain = 100;
  std::filesystem::remove_all(dir);
  const uint64_t bytes = n * 2 * kPayload;
  {
    NvmeStore::Options options;
    options.dir = dir;
    options.bytes = bytes;
    absl::StatusOr<std::unique_ptr<NvmeStore>> store = NvmeStore::Open(options);
    if (!store.ok()) return store.status();
    Aligned payload(static_cast<uint8_t*>(std::aligned_alloc(4096, kPayload)), &std::free);
    for (uint64_t i = 0; i < kPayload; ++i) payload[i] = static_cast<uint8_t>(i);
    const uint64_t checksum = BlockChecksum({payload.get(), kPayload});
    const std::vector<absl::Span<const uint8_t>> pieces = {{payload.get(), kPayload}};
    auto key = [](uint64_t i) { return absl::StrCat("chain-", i / kChain, "-block-", i % kChain); };
    for (uint64_t first = 0; first < n; first += 1024) {
      std::vector<NvmeWrite> batch;
      for (uint64_t i = first; i < std::min(n, first + 1024); ++i) {
        batch.push_back(
            {{"default", "restart", key(i)}, i % kChain == 0 ? "" : key(i - 1), checksum, pieces});
      }
      for (const absl::Status& s : (*store)->WriteBatch(batch)) {
        if (!s.ok()) return s;
      }
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(
      kvstored, {"--nvme_dir=" + dir, absl::StrCat("--nvme_capacity=", bytes),
                 "--host_capacity=64MiB", "--local_socket=off", "--data_port=-1"});
  if (!daemon.ok()) return daemon.status();
  RestartResult result;
  result.serving_seconds = Seconds(t0);
  auto stub = v1::KvCache::NewStub(
      grpc::CreateChannel((*daemon)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  if (grpc::Status s = stub->Stats(&ctx, {}, &stats); !s.ok()) {
    return absl::UnavailableError(s.error_message());
  }
  result.index_seconds = stats.nvme_restore_seconds();
  result.restored = stats.nvme_restored_blocks();
  grpc::ClientContext lctx;
  v1::LookupRequest lookup;
  lookup.set_namespace_("restart");
  for (uint64_t i = 0; i < kChain; ++i) lookup.add_keys(absl::StrCat("chain-7-block-", i));
  v1::LookupResponse hits;
  if (stub->Lookup(&lctx, lookup, &hits).ok()) result.chain_hits = hits.hit_count();
  (*daemon)->Stop();
  std::filesystem::remove_all(dir);
  return result;
}

}  // namespace

int RunNvmeBench(const std::string& kvstored, int runs, bool json) {
  const std::string dir = absl::GetFlag(FLAGS_nvme_bench_dir);
  const uint64_t bytes = SizeFlagOrDie(FLAGS_nvme_bench_bytes, "nvme_bench_bytes");
  const uint64_t block = SizeFlagOrDie(FLAGS_nvme_bench_block, "nvme_bench_block");
  const uint64_t page = SizeFlagOrDie(FLAGS_nvme_bench_page, "nvme_bench_page");
  const int qd = absl::GetFlag(FLAGS_nvme_bench_qd);
  if (system("fio --version > /dev/null 2>&1") != 0) {
    std::cerr << "kvbench: fio is not installed (tools/scripts/install_deps.sh installs it)\n";
    return 1;
  }
  std::filesystem::create_directories(dir);
  const std::string store_dir = dir + "/store";
  const std::string fio_file = dir + "/fio.data";
  std::filesystem::remove_all(store_dir);
  const uint64_t blocks = bytes / block;
  NvmeStore::Options options;
  options.dir = store_dir;
  options.bytes = blocks * (block + 4096);  // each record: a header sector, then the block
  options.engine = NvmeFile::Engine::kIoUring;
  options.queue_depth = qd;
  absl::StatusOr<std::unique_ptr<NvmeStore>> store = NvmeStore::Open(options);
  if (!store.ok()) {
    std::cerr << "kvbench: " << store.status() << "\n";
    return 1;
  }
  // Sources and destinations: kSlots blocks' worth each, as arena pages.
  constexpr uint64_t kSlots = 64;
  // One region, registered with io_uring as the daemon registers its arena.
  Aligned region(static_cast<uint8_t*>(std::aligned_alloc(4096, 2 * kSlots * block)), &std::free);
  uint8_t* const src = region.get();
  uint8_t* const dst = region.get() + kSlots * block;
  for (uint64_t i = 0; i < kSlots * block; ++i) src[i] = static_cast<uint8_t>(i * 131 + i / 4096);
  std::fill(dst, dst + kSlots * block, 0);
  (*store)->RegisterBuffers(region.get(), 2 * kSlots * block).IgnoreError();
  std::vector<std::vector<absl::Span<const uint8_t>>> src_pieces(kSlots);
  std::vector<std::vector<absl::Span<uint8_t>>> dst_pieces(kSlots);
  std::vector<uint64_t> checksums(kSlots);
  for (uint64_t s = 0; s < kSlots; ++s) {
    for (uint64_t at = 0; at < block; at += page) {
      const uint64_t n = std::min(page, block - at);
      src_pieces[s].push_back({src + s * block + at, n});
      dst_pieces[s].push_back({dst + s * block + at, n});
    }
    checksums[s] = BlockChecksum({src + s * block, block});
  }
  auto id = [](uint64_t i) { return NvmeBlockId{"bench", "nvme", absl::StrCat("block-", i)}; };

  std::vector<double> ours_w, ours_r, fio_w, fio_r;
  std::cerr << absl::StrFormat("kvbench nvme: %d rounds of %s in %s blocks, queue depth %d, %s\n",
                               runs, FormatBytes(blocks * block), FormatBytes(block), qd, dir);
  for (int run = 0; run < runs; ++run) {
    auto ours_write = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      for (uint64_t first = 0; first < blocks; first += kSlots) {
        std::vector<NvmeWrite> batch;
        for (uint64_t i = first; i < std::min(blocks, first + kSlots); ++i) {
          batch.push_back({id(i), "", checksums[i % kSlots], src_pieces[i % kSlots]});
        }
        for (const absl::Status& s : (*store)->WriteBatch(batch)) {
          if (!s.ok()) {
            std::cerr << "kvbench: NVMe write: " << s << "\n";
            std::exit(1);
          }
        }
      }
      ours_w.push_back(blocks * block / Seconds(t0) / 1e9);
    };
    auto ours_read = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      for (uint64_t first = 0; first < blocks; first += kSlots) {
        std::vector<NvmeRead> batch;
        for (uint64_t i = first; i < std::min(blocks, first + kSlots); ++i) {
          batch.push_back({id(i), dst_pieces[i % kSlots]});
        }
        for (const absl::Status& s : (*store)->ReadBatch(batch)) {
          if (!s.ok()) {
            std::cerr << "kvbench: NVMe read: " << s << "\n";
            std::exit(1);
          }
        }
      }
      ours_r.push_back(blocks * block / Seconds(t0) / 1e9);
    };
    auto fio = [&](bool write) {
      const double g = RunFio(fio_file, write, blocks * block, block, qd);
      if (g <= 0) {
        std::cerr << "kvbench: fio failed\n";
        std::exit(1);
      }
      (write ? fio_w : fio_r).push_back(g);
    };
    // Alternate who goes first, so drift on a shared disk favours neither.
    if (run % 2 == 0) {
      ours_write();
      fio(true);
      ours_read();
      fio(false);
    } else {
      fio(true);
      ours_write();
      fio(false);
      ours_read();
    }
    for (uint64_t i = 0; i < blocks; ++i) (*store)->Remove(id(i)).IgnoreError();
    std::cerr << absl::StrFormat(
        "  round %d/%d: write %.2f vs fio %.2f GB/s, read %.2f vs fio %.2f GB/s\n", run + 1,
        runs, ours_w.back(), fio_w.back(), ours_r.back(), fio_r.back());
  }
  store->reset();
  std::filesystem::remove_all(store_dir);
  std::filesystem::remove(fio_file);
  const double w = Median(ours_w), fw = Median(fio_w), r = Median(ours_r), fr = Median(fio_r);
  // Each round's pair ran back to back, so its ratio sees the same disk
  // weather; the median of those is the figure the goal is checked against.
  std::vector<double> w_ratio, r_ratio;
  for (size_t i = 0; i < ours_w.size(); ++i) {
    w_ratio.push_back(ours_w[i] / fio_w[i]);
    r_ratio.push_back(ours_r[i] / fio_r[i]);
  }
  const double wq = Median(w_ratio), rq = Median(r_ratio);
  RestartResult restart;
  if (const int n = absl::GetFlag(FLAGS_nvme_restart_blocks); n > 0) {
    std::cerr << "kvbench nvme: writing " << n << " blocks, then timing a kvstored restart\n";
    absl::StatusOr<RestartResult> r = TimeRestart(kvstored, dir + "/restart", n);
    if (!r.ok()) {
      std::cerr << "kvbench: restart: " << r.status() << "\n";
      return 1;
    }
    restart = *r;
  }
  if (json) {
    std::cout << absl::StrFormat(
        "{\"nvme_write_gbps\": %.3f, \"fio_write_gbps\": %.3f, \"nvme_read_gbps\": %.3f, "
        "\"fio_read_gbps\": %.3f, \"write_vs_fio\": %.3f, \"read_vs_fio\": %.3f, "
        "\"block_bytes\": %d, \"queue_depth\": %d, \"runs\": %d, \"restart_blocks\": %d, "
        "\"restart_serving_s\": %.3f, \"restart_index_s\": %.3f}\n",
        w, fw, r, fr, wq, rq, block, qd, runs, restart.restored, restart.serving_seconds,
        restart.index_seconds);
    return 0;
  }
  std::cout << absl::StrFormat(
      "NVMe tier vs fio, %s blocks, queue depth %d, median of %d rounds (%s each)\n"
      "                      tier       fio    tier/fio (median of the rounds' ratios)\n"
      "  write (GB/s)     %7.2f   %7.2f    %6.2fx\n"
      "  read  (GB/s)     %7.2f   %7.2f    %6.2fx\n"
      "tier: records with header sectors, RocksDB index entries, XXH3 verified on read;\n"
      "fio: io_uring, O_DIRECT, the same file system\n",
      FormatBytes(block), qd, runs, FormatBytes(blocks * block), w, fw, wq, r, fr, rq);
  if (restart.restored > 0) {
    std::cout << absl::StrFormat(
        "restart with %d NVMe blocks: serving after %.2f s (indexing them: %.2f s); a 100-block "
        "chain then hits %d of 100\n",
        restart.restored, restart.serving_seconds, restart.index_seconds, restart.chain_hits);
  }
  return 0;
}

}  // namespace kvcache
