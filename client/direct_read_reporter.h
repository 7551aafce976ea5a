// Batches the reports of blocks a local worker copied through the block
// directory. Those copies never reach the daemon, yet its LRU order, hit
// counts and Stats must count them; so they are sent afterwards, one-way: at
// most `delay` after the first unsent read, at once when `max_blocks`
// distinct blocks are waiting, and on destruction.
//
// Thread safety: Record and RecordFetch may be called from any thread.
// `send` may run on the reporter's own thread and on a recording thread at
// once, so it must be thread-safe.
#ifndef KVCACHE_CLIENT_DIRECT_READ_REPORTER_H_
#define KVCACHE_CLIENT_DIRECT_READ_REPORTER_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "key/block_key.h"
#include "common/mutex.h"
#include "kvcache/v1/local.pb.h"

namespace kvcache {

class DirectReadReporter {
 public:
  using Send = std::function<void(const v1::DirectReadReport&)>;

  // `send` must be thread-safe and outlive the reporter.
  DirectReadReporter(Send send, absl::Duration delay, size_t max_blocks);
  // Sends whatever is still unsent.
  ~DirectReadReporter();
  DirectReadReporter(const DirectReadReporter&) = delete;
  DirectReadReporter& operator=(const DirectReadReporter&) = delete;

  // One block of namespace `ns` copied, `bytes` of it.
  void Record(uint32_t ns, const BlockKey& key, uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // One Fetch call answered wholly from the directory.
  void RecordFetch() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending {
    absl::flat_hash_map<std::pair<uint32_t, BlockKey>, uint32_t> reads;
    uint64_t fetches = 0;
    uint64_t bytes = 0;
    bool empty() const { return reads.empty() && fetches == 0; }
  };
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Sends `batch` if it holds anything.
  void SendBatch(Pending batch) const;

  const Send send_;
  const absl::Duration delay_;
  const size_t max_blocks_;
  Mutex mu_;
  CondVar wake_;
  Pending pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_DIRECT_READ_REPORTER_H_
