#include "tools/bench_median.h"
#include "tools/kvbench_gpu.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "client/gpu_transfer.h"
#include "key/key_schema.h"
#include "common/byte_size.h"
#include "gpu/copy_engine.h"
#include "gpu/gpu_probe.h"
#include "gpu/pinned_memory.h"
#include "tools/daemon_process.h"

#if KVCACHE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

ABSL_FLAG(std::string, gpu_bench_bytes, "256MiB",
          "gpu: bytes moved per case per round (a multiple of 2 MiB).");
ABSL_FLAG(int, gpu_device, 0, "gpu: CUDA device index to measure.");

namespace kvcache {
namespace {

using Clock = std::chrono::steady_clock;
using Direction = CopyEngine::Direction;

// Copies of `piece` bytes between host and device buffers of `bytes`, the
// device slots in a shuffled order so that no two copies can be merged.
std::vector<CopyOp> Pieces(Direction direction, uint8_t* host, uint8_t* device, uint64_t bytes,
                           uint64_t piece) {
  std::vector<uint64_t> slot(bytes / piece);
  std::iota(slot.begin(), slot.end(), 0);
  std::shuffle(slot.begin(), slot.end(), std::mt19937(42));
  std::vector<CopyOp> ops;
  for (uint64_t i = 0; i < slot.size(); ++i) {
    uint8_t* h = host + i * piece;
    uint8_t* d = device + slot[i] * piece;
    ops.push_back(direction == Direction::kToDevice ? CopyOp{d, h, piece} : CopyOp{h, d, piece});
  }
  return ops;
}

}  // namespace

#if KVCACHE_HAVE_CUDA

// GB/s of fetching `bytes` of 2 MiB blocks from a kvstored on this host into
// device memory at `dev` through GpuTransfer, one median per round; empty
// with a message on stderr if the daemon or the transfer cannot start.
// From its host tier (no GPU tier: staged and uploaded), or, with
// `from_gpu_tier`, from its GPU tier on this GPU (device to device under
// GPU leases).
std::vector<double> FetchIntoGpu(const std::string& kvstored, uint8_t* dev, uint64_t bytes,
                                 int runs, bool from_gpu_tier) {
  constexpr uint64_t kBlock = 2 << 20;
  auto daemon = DaemonProcess::Start(
      kvstored, {absl::StrCat("--host_capacity=", 2 * bytes), "--page_size=2MiB",
                 from_gpu_tier ? absl::StrCat("--gpu_capacity=", 2 * bytes) : "--gpu_capacity=0",
                 absl::StrCat("--gpu_index=", absl::GetFlag(FLAGS_gpu_device))});
  if (!daemon.ok()) {
    std::cerr << "kvbench gpu: starting kvstored: " << daemon.status().message() << "\n";
    return {};
  }
  ClientOptions options;
  options.address = (*daemon)->address();
  auto client = Client::Create(options);
  auto gpu = client.ok()
                 ? GpuTransfer::Create(client->get(), {.device = absl::GetFlag(FLAGS_gpu_device)})
                 : client.status();
  if (!gpu.ok()) {
    std::cerr << "kvbench gpu: " << gpu.status().message() << "\n";
    return {};
  }
  KeySchema schema;
  schema.model_id = "kvbench-gpu";
  std::vector<uint32_t> tokens((bytes / kBlock) * schema.tokens_per_block);
  std::iota(tokens.begin(), tokens.end(), 1);
  const std::vector<BlockKey> chain = *ChainKeys(schema, tokens);
  const std::string ns = schema.NamespaceName();
  std::vector<PutBlock> puts;
  std::vector<DeviceFetchTarget> targets;
  for (size_t i = 0; i < chain.size(); ++i) {
    puts.push_back({chain[i], std::string(kBlock, static_cast<char>(i))});
    targets.push_back({chain[i], dev + i * kBlock, kBlock});
  }
  for (size_t i = 0; i < puts.size(); i += 16) {
    const size_t n = std::min<size_t>(16, puts.size() - i);
    auto put = (*client)->Put(ns, i == 0 ? BlockKey() : chain[i - 1], {puts.data() + i, n});
    if (!put.ok()) {
      std::cerr << "kvbench gpu: put: " << put.status().message() << "\n";
      return {};
    }
  }
  cudaStream_t stream = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (from_gpu_tier) {
    // Puts land on the GPU tier in the background: wait until every block has.
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    FetchResult got;
    do {
      got = (*gpu)->FetchToDevice(ns, targets, stream);
      cudaStreamSynchronize(stream);
    } while (std::count(got.tiers.begin(), got.tiers.end(), v1::TIER_GPU) != targets.size() &&
             Clock::now() < give_up);
    if (std::count(got.tiers.begin(), got.tiers.end(), v1::TIER_GPU) != targets.size()) {
      std::cerr << "kvbench gpu: the blocks never all landed on kvstored's GPU tier, or it "
                   "shares no GPU pool with this process\n";
      cudaStreamDestroy(stream);
      return {};
    }
  }
  std::vector<double> gbps;
  for (int round = 0; round <= runs; ++round) {
    const auto start = Clock::now();
    FetchResult got = (*gpu)->FetchToDevice(ns, targets, stream);
    cudaStreamSynchronize(stream);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (got.blocks != targets.size()) {
      std::cerr << "kvbench gpu: fetch into GPU memory got " << got.blocks << " of "
                << targets.size() << " blocks: " << got.status.message() << "\n";
      gbps.clear();
      break;
    }
    if (round > 0) gbps.push_back(bytes / seconds / 1e9);
  }
  cudaStreamDestroy(stream);
  return gbps;
}

int RunGpuBench(const std::string& kvstored, int runs, bool json) {
  absl::StatusOr<uint64_t> bytes_flag = ParseByteSize(absl::GetFlag(FLAGS_gpu_bench_bytes));
  if (!bytes_flag.ok() || *bytes_flag == 0 || *bytes_flag % (2 << 20) != 0) {
    std::cerr << "kvbench: --gpu_bench_bytes must be a positive multiple of 2 MiB\n";
    return 2;
  }
  const uint64_t bytes = *bytes_flag;
  const int device = absl::GetFlag(FLAGS_gpu_device);
  auto batched = CopyEngine::Create({device, /*batch_api=*/true});
  auto per_copy = CopyEngine::Create({device, /*batch_api=*/false});
  if (!batched.ok() || !per_copy.ok()) {
    std::cerr << "kvbench gpu: nothing measured: "
              << (batched.ok() ? per_copy.status() : batched.status()).message() << "\n";
    return 1;
  }
  auto host = PinnedBuffer::Create(bytes);
  if (!host.ok()) {
    std::cerr << "kvbench gpu: " << host.status().message() << "\n";
    return 1;
  }
  std::memset((*host)->data(), 0x5A, bytes);
  void* device_buffer = nullptr;
  if (cudaMalloc(&device_buffer, bytes) != cudaSuccess) {
    std::cerr << "kvbench gpu: cudaMalloc of " << FormatBytes(bytes) << " failed\n";
    return 1;
  }
  uint8_t* dev = static_cast<uint8_t*>(device_buffer);
  cudaStream_t plain = nullptr;
  cudaStreamCreateWithFlags(&plain, cudaStreamNonBlocking);

  struct Case {
    std::string name;
    Direction direction;
    uint64_t piece;  // 0: the plain reference copy
    CopyEngine* engine;
    std::vector<double> gbps;
  };
  std::vector<Case> cases;
  for (Direction d : {Direction::kToDevice, Direction::kToHost}) {
    const char* dir = d == Direction::kToDevice ? "H2D" : "D2H";
    cases.push_back(
        {absl::StrFormat("%s one cudaMemcpyAsync of %s (peak)", dir, FormatBytes(bytes)),
         d,
         0,
         nullptr,
         {}});
    cases.push_back(
        {absl::StrFormat("%s 2 MiB blocks, engine", dir), d, 2 << 20, batched->get(), {}});
    cases.push_back({absl::StrFormat("%s 32 KiB fragments, engine batched", dir),
                     d,
                     32 << 10,
                     batched->get(),
                     {}});
    cases.push_back({absl::StrFormat("%s 32 KiB fragments, one cudaMemcpyAsync each", dir),
                     d,
                     32 << 10,
                     per_copy->get(),
                     {}});
  }
  std::cerr << "kvbench gpu: " << ProbeGpu().detail << "; engine " << (*batched)->batch_mode()
            << "; " << runs << " rounds of " << FormatBytes(bytes) << " per case\n";
  for (int round = 0; round <= runs; ++round) {  // round 0 warms up
    for (Case& c : cases) {
      const auto start = Clock::now();
      if (c.piece == 0) {
        const bool up = c.direction == Direction::kToDevice;
        cudaMemcpyAsync(up ? static_cast<void*>(dev) : (*host)->data(),
                        up ? static_cast<const void*>((*host)->data()) : dev, bytes,
                        cudaMemcpyDefault, plain);
        if (cudaStreamSynchronize(plain) != cudaSuccess) {
          std::cerr << "kvbench gpu: reference copy failed\n";
          return 1;
        }
      } else {
        const std::vector<CopyOp> ops = Pieces(c.direction, (*host)->data(), dev, bytes, c.piece);
        absl::StatusOr<CopyTicket> ticket = c.engine->Submit(c.direction, ops);
        absl::Status done = ticket.ok() ? ticket->Wait() : ticket.status();
        if (!done.ok()) {
          std::cerr << "kvbench gpu: " << c.name << ": " << done.message() << "\n";
          return 1;
        }
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (round > 0) c.gbps.push_back(bytes / seconds / 1e9);
    }
  }
  cudaStreamDestroy(plain);
  // End to end: the daemon's host tier, and its GPU tier, into GPU memory
  // on this host.
  Case from_host{"fetch from kvstored's host tier into GPU memory, 2 MiB", Direction::kToDevice,
                 2 << 20, nullptr, FetchIntoGpu(kvstored, dev, bytes, runs, false)};
  Case from_gpu{"fetch from kvstored's GPU tier (CUDA IPC, D2D), 2 MiB", Direction::kToDevice,
                2 << 20, nullptr, FetchIntoGpu(kvstored, dev, bytes, runs, true)};
  cudaFree(device_buffer);
  for (Case* c : {&from_gpu, &from_host}) {
    if (!c->gbps.empty()) cases.insert(cases.begin() + 4, std::move(*c));
  }

  double peak = 0;
  for (const Case& c : cases) {
    const double gbps = Median(c.gbps);
    if (c.piece == 0) peak = gbps;
    const double ratio = peak > 0 ? gbps / peak : 0;
    if (json) {
      std::cout << absl::StrFormat("{\"case\": \"%s\", \"gbps\": %.2f, \"of_peak\": %.3f}\n",
                                   c.name, gbps, ratio);
    } else {
      const char* goal = c.piece == (2u << 20) && c.engine != nullptr           ? "  (goal >= 0.90)"
                         : c.piece == (32u << 10) && c.engine == batched->get() ? "  (goal >= 0.70)"
                                                                                : "";
      std::cout << absl::StrFormat("%-52s %7.2f GB/s  %.2fx peak%s\n", c.name, gbps, ratio, goal);
    }
  }
  return 0;
}

#else  // !KVCACHE_HAVE_CUDA

int RunGpuBench(const std::string&, int, bool) {
  std::cerr << "kvbench gpu: nothing measured: built without CUDA\n";
  return 1;
}

#endif

}  // namespace kvcache
