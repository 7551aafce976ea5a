// The NVMe tier as the daemon uses it: an NvmeStore named by the index's
// namespaces, with the rules for when the disk may be used.
//
//  - Faults. An I/O error on a write (a full disk included) stops writes; one
//    on a read stops reads. Either way the tier reports itself disabled, with
//    the error, and DRAM keeps serving. Every `retry_interval` one operation
//    is let through as a probe; when it works the tier is enabled again.
//  - Admission. Only blocks read at least `admit_min_hits` times are written
//    (0 admits every block), and writes stay within `write_bytes_per_sec`
//    (0 is unlimited), to spare the drive's endurance.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_KVSTORE_TIERS_NVME_TIER_H_
#define KVCACHE_KVSTORE_TIERS_NVME_TIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "kvstore/index/cached_block.h"
#include "kvstore/index/namespace_table.h"
#include "offload/nvme_store.h"

namespace kvcache {

class NvmeTier {
 public:
  struct Options {
    NvmeStore::Options store;
    uint64_t write_bytes_per_sec = 0;  // 0: unlimited
    uint32_t admit_min_hits = 0;       // 0: every block
    absl::Duration retry_interval = absl::Seconds(1);
  };

  struct Counters {
    uint64_t written_blocks = 0, written_bytes = 0;
    uint64_t read_blocks = 0, read_bytes = 0;
    uint64_t corrupt_drops = 0;   // reads that failed verification
    uint64_t write_errors = 0, read_errors = 0;
    uint64_t not_admitted = 0;    // spills skipped by admission or budget
  };

  // Opens the store (see NvmeStore::Open for errors). `names` outlives this.
  static absl::StatusOr<std::unique_ptr<NvmeTier>> Open(const Options& options,
                                                        NamespaceTable* names);

  // Writes a host-resident block. UNAVAILABLE while writes are disabled (or
  // after the error that disabled them), RESOURCE_EXHAUSTED when the store is
  // full, ALREADY_EXISTS if it is there.
  absl::Status Write(NamespaceId ns, const CachedBlock& block);
  // The same for several blocks at once, up to the queue depth in flight;
  // one status per block.
  struct BlockRef {
    NamespaceId ns;
    const CachedBlock* block;
  };
  std::vector<absl::Status> WriteBatch(absl::Span<const BlockRef> blocks);

  // Reads a block into `pages` (sized for it) and verifies it. NOT_FOUND if
  // absent, DATA_LOSS if it failed verification (and is dropped),
  // UNAVAILABLE while reads are disabled or on an I/O error.
  absl::Status Read(NamespaceId ns, const BlockMeta& meta, PageRun& pages);

  // Drops a block's record; absent is fine.
  void Remove(NamespaceId ns, const BlockMeta& meta);

  // Whether a block read `hits` times may be written now; takes `bytes` from
  // the write budget if so. Counts a refusal. `now` is for tests.
  bool Admit(uint64_t hits, uint64_t bytes) { return Admit(hits, bytes, absl::Now()); }
  bool Admit(uint64_t hits, uint64_t bytes, absl::Time now);

  // Calls fn(ns, meta) for every stored block, for a warm restart. meta has
  // key, parent, size, checksum and created time; records whose names are
  // not valid are dropped.
  void ForEachStored(const std::function<void(NamespaceId, const BlockMeta&)>& fn);

  // Registers the host arena with the engine (best effort).
  absl::Status RegisterArena(uint8_t* base, uint64_t length) {
    return store_->RegisterBuffers(base, length);
  }

  // The store underneath, for tests and tools that look at records.
  NvmeStore& store() { return *store_; }

  bool enabled() const;
  // False while writes are disabled by an I/O error (probes still pass).
  bool writes_open() const;
  // "io_uring, 12 GiB file" and, while disabled, why.
  std::string Detail() const;
  uint64_t capacity_bytes() const { return capacity_bytes_; }
  uint64_t used_bytes() const { return store_->used_bytes(); }
  uint64_t blocks() const { return store_->blocks(); }
  Counters counters() const;

 private:
  // One direction (reads or writes): enabled, or disabled since an error.
  struct Gate {
    bool open = true;
    std::string why;
    absl::Time retry_at;
  };

  NvmeTier(const Options& options, std::unique_ptr<NvmeStore> store, NamespaceTable* names);
  NvmeBlockId IdOf(NamespaceId ns, const BlockMeta& meta) const;
  // True if an op may go to the disk now (open, or due for a probe).
  // (Gates are named by member pointer, so only these, under mu_, touch
  // them: clang's thread-safety analysis checks that.)
  bool Pass(Gate NvmeTier::*gate) ABSL_LOCKS_EXCLUDED(mu_);
  // Records how an op that passed went; I/O errors close the gate.
  void Settle(Gate NvmeTier::*gate, const absl::Status& status, const char* what)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  const uint64_t capacity_bytes_;
  std::unique_ptr<NvmeStore> store_;
  NamespaceTable* const names_;  // not owned

  mutable Mutex mu_;
  Gate writes_ ABSL_GUARDED_BY(mu_);
  Gate reads_ ABSL_GUARDED_BY(mu_);
  double budget_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // token bucket
  absl::Time budget_at_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> written_blocks_{0}, written_bytes_{0};
  std::atomic<uint64_t> read_blocks_{0}, read_bytes_{0};
  std::atomic<uint64_t> write_errors_{0}, read_errors_{0}, not_admitted_{0};
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_TIERS_NVME_TIER_H_
