// The NVMe tier's store: block records in an NvmeFile, and an index in
// RocksDB so a restart finds them again.
//
// Ordering, so the index never points at unwritten data: a write sends the
// header sector and payload, waits for both to complete, and only then adds
// the index entry; a removal deletes the index entry first and then frees
// the extent. On open, free space is rebuilt from the index (an entry whose
// extent overlaps another's is dropped).
//
// Integrity: every read checks the header sector against the index entry
// and the payload against its XXH3-64. A mismatch drops the entry, counts it
// and answers DATA_LOSS, which callers treat as a miss.
//
// Thread safety: all methods may be called from any thread.
#ifndef KVCACHE_OFFLOAD_NVME_STORE_H_
#define KVCACHE_OFFLOAD_NVME_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/mutex.h"
#include "common/range_allocator.h"
#include "offload/nvme_file.h"
#include "offload/nvme_record.h"

namespace rocksdb {
class DB;
}

namespace kvcache {

// What the index keeps for one block.
struct NvmeEntry {
  uint64_t offset = 0;        // of the header sector in the file
  uint64_t payload_bytes = 0;
  uint64_t checksum = 0;      // XXH3-64 of the payload
  uint64_t generation = 0;
  int64_t created_micros = 0;
  std::string parent;         // the parent block's key; empty for a root
};

// Which block: the index key.
struct NvmeBlockId {
  std::string tenant, name_space, key;
};

// One block of a WriteBatch / ReadBatch; pieces as for Write / Read.
struct NvmeWrite {
  NvmeBlockId id;
  std::string parent;
  uint64_t checksum = 0;
  absl::Span<const absl::Span<const uint8_t>> payload;
};
struct NvmeRead {
  NvmeBlockId id;
  absl::Span<const absl::Span<uint8_t>> dest;
};

class NvmeStore {
 public:
  struct Options {
    std::string dir;           // holds index/ (RocksDB) and blocks.data
    std::string data_path;     // a raw block device instead of dir/blocks.data
    uint64_t bytes = 0;        // size of blocks.data
    NvmeFile::Engine engine = NvmeFile::Engine::kAuto;
    int queue_depth = 8;
    NvmeFaultPoint* faults = nullptr;  // tests only: injected disk faults; not owned
  };

  // Opens or creates the store and rebuilds free space from the index.
  // An index RocksDB cannot open or read (a corrupt or missing file) is
  // moved to index.corrupt and the store starts empty; open_note() says so.
  // INVALID_ARGUMENT for bad options, UNAVAILABLE if the file is in use by
  // another process or the file or the index cannot be opened otherwise (the
  // message says which).
  static absl::StatusOr<std::unique_ptr<NvmeStore>> Open(const Options& options);
  ~NvmeStore();

  // Writes a block whose payload is `payload` (each piece 4 KiB-aligned in
  // memory; all but the last a multiple of 4 KiB long, and the memory after
  // the last piece readable up to the next 4 KiB). RESOURCE_EXHAUSTED when
  // no extent is free; UNAVAILABLE for an I/O error (a full disk included). ALREADY_EXISTS if
  // indexed.
  absl::Status Write(const NvmeBlockId& id, const std::string& parent, uint64_t checksum,
                     absl::Span<const absl::Span<const uint8_t>> payload);

  // Writes several blocks with up to queue_depth records in flight; one
  // status per block, as Write's.
  std::vector<absl::Status> WriteBatch(absl::Span<const NvmeWrite> writes);

  // The index entry, or NOT_FOUND.
  absl::StatusOr<NvmeEntry> Find(const NvmeBlockId& id) const;

  // Reads the block into `dest` (pieces as for Write, writable up to the
  // next 4 KiB after the last) and verifies it. NOT_FOUND if not indexed,
  // DATA_LOSS (and the entry dropped) if it does not verify.
  absl::Status Read(const NvmeBlockId& id, absl::Span<const absl::Span<uint8_t>> dest);

  // Reads several blocks with up to queue_depth records in flight; one
  // status per block, as Read's.
  std::vector<absl::Status> ReadBatch(absl::Span<const NvmeRead> reads);

  // Drops the block: index entry first, then its extent. NOT_FOUND if absent.
  absl::Status Remove(const NvmeBlockId& id);

  // Calls fn(id, entry) for every indexed block (a snapshot of the index;
  // fn may call Remove).
  void ForEach(const std::function<void(const NvmeBlockId&, const NvmeEntry&)>& fn) const;

  // Registers memory that reads and writes will use (the host arena), so
  // io_uring pins it once instead of per op. Best effort; says why not.
  absl::Status RegisterBuffers(uint8_t* base, uint64_t length) {
    return file_->RegisterBuffers(base, length);
  }

  uint64_t blocks() const { return blocks_.load(); }
  uint64_t used_bytes() const;
  uint64_t corrupt_drops() const { return corrupt_drops_.load(); }
  const char* engine_name() const { return file_->engine_name(); }
  // Empty, or what Open had to do to start (an unreadable index set aside).
  const std::string& open_note() const { return open_note_; }

 private:
  NvmeStore(std::unique_ptr<NvmeFile> file, rocksdb::DB* db, RangeAllocator extents,
            uint64_t next_generation);
  absl::Status Drop(const std::string& index_key, const NvmeEntry& entry);

  std::unique_ptr<NvmeFile> file_;
  rocksdb::DB* const db_;  // owned
  mutable Mutex mu_;       // the allocator, and index updates with it
  RangeAllocator extents_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> blocks_{0};
  std::atomic<uint64_t> corrupt_drops_{0};
  std::string open_note_;
};

}  // namespace kvcache

#endif  // KVCACHE_OFFLOAD_NVME_STORE_H_
