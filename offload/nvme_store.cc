#include "offload/nvme_store.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "key/checksum.h"
#include "rocksdb/db.h"

namespace kvcache {
namespace {

using AlignedSector = std::unique_ptr<uint8_t[], decltype(&std::free)>;

AlignedSector NewSector() {
  return AlignedSector(static_cast<uint8_t*>(std::aligned_alloc(kNvmeSector, kNvmeSector)),
                       &std::free);
}

uint64_t RoundUp(uint64_t n) { return (n + kNvmeSector - 1) / kNvmeSector * kNvmeSector; }

void AppendU16String(std::string* out, const std::string& s) {
  const uint16_t n = static_cast<uint16_t>(s.size());
  out->append(reinterpret_cast<const char*>(&n), sizeof(n));
  out->append(s);
}

// tenant and namespace length-prefixed, then the key: distinct ids never
// share an index key.
std::string IndexKey(const NvmeBlockId& id) {
  std::string k;
  AppendU16String(&k, id.tenant);
  AppendU16String(&k, id.name_space);
  k += id.key;
  return k;
}

bool ReadU16String(const std::string& in, size_t* at, std::string* out) {
  uint16_t n = 0;
  if (in.size() < *at + sizeof(n)) return false;
  std::memcpy(&n, &in[*at], sizeof(n));
  *at += sizeof(n);
  if (in.size() < *at + n) return false;
  *out = in.substr(*at, n);
  *at += n;
  return true;
}

bool DecodeIndexKey(const std::string& k, NvmeBlockId* id) {
  size_t at = 0;
  if (!ReadU16String(k, &at, &id->tenant) || !ReadU16String(k, &at, &id->name_space)) return false;
  id->key = k.substr(at);
  return !id->key.empty();
}

std::string EncodeEntry(const NvmeEntry& e) {
  std::string v(40, '\0');
  std::memcpy(&v[0], &e.offset, 8);
  std::memcpy(&v[8], &e.payload_bytes, 8);
  std::memcpy(&v[16], &e.checksum, 8);
  std::memcpy(&v[24], &e.generation, 8);
  std::memcpy(&v[32], &e.created_micros, 8);
  AppendU16String(&v, e.parent);
  return v;
}

bool DecodeEntry(const std::string& v, NvmeEntry* e) {
  if (v.size() < 42) return false;
  std::memcpy(&e->offset, &v[0], 8);
  std::memcpy(&e->payload_bytes, &v[8], 8);
  std::memcpy(&e->checksum, &v[16], 8);
  std::memcpy(&e->generation, &v[24], 8);
  std::memcpy(&e->created_micros, &v[32], 8);
  uint16_t n = 0;
  std::memcpy(&n, &v[40], 2);
  if (v.size() != 42u + n) return false;
  e->parent = v.substr(42);
  return true;
}

int64_t NowMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// The index opened and read whole: free space rebuilt from it.
struct IndexScan {
  rocksdb::DB* db = nullptr;  // the caller owns it
  RangeAllocator extents;
  uint64_t blocks = 0, bad_entries = 0, max_generation = 0;
};

// Opens the RocksDB index in `dir` (creating it if missing) and reads every
// entry. An entry that does not decode, or overlaps space already claimed,
// cannot be trusted and is deleted. DATA_LOSS if RocksDB cannot open or read
// the index (a corrupt or missing file); UNAVAILABLE for other failures.
absl::StatusOr<IndexScan> OpenAndScanIndex(const std::string& dir, uint64_t bytes) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.paranoid_checks = true;
  // The index is small (about 100 bytes per block), but RocksDB's default
  // memtable grows to 64 MiB before it flushes, twice over: the daemon's
  // memory would creep up by that much under churn (memsoak).
  db_options.write_buffer_size = 4 << 20;
  db_options.max_write_buffer_number = 2;
  rocksdb::DB* db = nullptr;
  const rocksdb::Status opened = rocksdb::DB::Open(db_options, dir, &db);
  if (!opened.ok()) {
    const std::string why = opened.ToString();
    // A lock held elsewhere or a permission problem is not the index's fault.
    if (opened.IsCorruption() || opened.IsNotFound() || opened.IsInvalidArgument() ||
        (opened.IsIOError() && why.find("lock") == std::string::npos &&
         why.find("ermission") == std::string::npos)) {
      return absl::DataLossError(why);
    }
    return absl::UnavailableError(absl::StrCat("cannot open the NVMe index in ", dir, ": ", why));
  }
  IndexScan scan{db, RangeAllocator(bytes, kNvmeSector)};
  std::vector<std::string> bad;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    NvmeEntry e;
    NvmeBlockId id;
    if (!DecodeIndexKey(it->key().ToString(), &id) || !DecodeEntry(it->value().ToString(), &e) ||
        !scan.extents.MarkUsed(e.offset, NvmeRecordBytes(e.payload_bytes)).ok()) {
      bad.push_back(it->key().ToString());
      continue;
    }
    scan.max_generation = std::max(scan.max_generation, e.generation);
    ++scan.blocks;
  }
  const rocksdb::Status read = it->status();
  it.reset();
  if (!read.ok()) {
    delete db;
    return absl::DataLossError(read.ToString());
  }
  for (const std::string& k : bad) db->Delete(rocksdb::WriteOptions(), k);
  scan.bad_entries = bad.size();
  return scan;
}

// As OpenAndScanIndex, but an index it cannot read is moved to
// `dir`.corrupt (why in *why_unreadable) and a new one is started. The file
// lock taken before says no other daemon uses this directory, so the index
// is ours to set aside. Its records stay in the data file, unread: without
// the index nothing can say which of them are current, and a guess could
// serve an old block. They are overwritten as space is used.
absl::StatusOr<IndexScan> OpenIndexOrSetItAside(const std::string& dir, uint64_t bytes,
                                                std::string* why_unreadable) {
  absl::StatusOr<IndexScan> scan = OpenAndScanIndex(dir, bytes);
  if (scan.ok() || scan.status().code() != absl::StatusCode::kDataLoss) return scan;
  *why_unreadable = std::string(scan.status().message());
  const std::string aside = dir + ".corrupt";
  std::error_code ec;
  std::filesystem::remove_all(aside, ec);
  std::filesystem::rename(dir, aside, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("the NVMe index in ", dir, " cannot be read (",
                                               *why_unreadable, ") nor moved aside: ",
                                               ec.message()));
  }
  return OpenAndScanIndex(dir, bytes);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NvmeStore>> NvmeStore::Open(const Options& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("NVMe store needs a directory");
  mkdir(options.dir.c_str(), 0700);  // fine if it exists; opening below says if unusable
  NvmeFile::Options file_options;
  file_options.path = options.data_path.empty() ? options.dir + "/blocks.data" : options.data_path;
  file_options.bytes = options.bytes;
  file_options.engine = options.engine;
  file_options.queue_depth = options.queue_depth;
  file_options.faults = options.faults;
  absl::StatusOr<std::unique_ptr<NvmeFile>> file = NvmeFile::Open(file_options);
  if (!file.ok()) return file.status();
  const std::string index_dir = options.dir + "/index";
  std::string why_unreadable;
  absl::StatusOr<IndexScan> scan = OpenIndexOrSetItAside(index_dir, options.bytes, &why_unreadable);
  if (!scan.ok()) return scan.status();
  std::unique_ptr<NvmeStore> store(new NvmeStore(std::move(*file), scan->db,
                                                 std::move(scan->extents),
                                                 scan->max_generation + 1));
  store->blocks_.store(scan->blocks);
  store->corrupt_drops_.store(scan->bad_entries);
  if (!why_unreadable.empty()) {
    store->open_note_ = absl::StrCat("the index in ", index_dir, " could not be read (",
                                     why_unreadable, "); it was moved to ", index_dir,
                                     ".corrupt and the tier started empty");
  }
  return store;
}

NvmeStore::NvmeStore(std::unique_ptr<NvmeFile> file, rocksdb::DB* db, RangeAllocator extents,
                     uint64_t next_generation)
    : file_(std::move(file)),
      db_(db),
      extents_(std::move(extents)),
      next_generation_(next_generation) {}

NvmeStore::~NvmeStore() { delete db_; }

uint64_t NvmeStore::used_bytes() const {
  MutexLock lock(&mu_);
  return extents_.used_bytes();
}

absl::Status NvmeStore::Write(const NvmeBlockId& id, const std::string& parent,
                              uint64_t checksum,
                              absl::Span<const absl::Span<const uint8_t>> payload) {
  return WriteBatch({NvmeWrite{id, parent, checksum, payload}})[0];
}

std::vector<absl::Status> NvmeStore::WriteBatch(absl::Span<const NvmeWrite> writes) {
  struct Pending {
    std::string index_key;
    NvmeEntry entry;
    AlignedSector sector{nullptr, &std::free};
  };
  std::vector<absl::Status> results(writes.size());
  std::vector<Pending> pending(writes.size());
  std::vector<NvmeIo> ops;
  std::vector<size_t> op_of(writes.size(), SIZE_MAX);
  for (size_t w = 0; w < writes.size(); ++w) {
    const NvmeWrite& write = writes[w];
    uint64_t payload_bytes = 0;
    bool aligned = true;
    for (size_t i = 0; i < write.payload.size(); ++i) {
      aligned = aligned &&
                reinterpret_cast<uintptr_t>(write.payload[i].data()) % kNvmeSector == 0 &&
                (i + 1 == write.payload.size() || write.payload[i].size() % kNvmeSector == 0);
      payload_bytes += write.payload[i].size();
    }
    if (!aligned) {
      results[w] = absl::InvalidArgumentError("NVMe payload pieces must be 4 KiB-aligned");
      continue;
    }
    NvmeRecordHeader header;
    header.key = write.id.key;
    header.tenant = write.id.tenant;
    header.name_space = write.id.name_space;
    header.payload_bytes = payload_bytes;
    header.payload_checksum = write.checksum;
    header.created_micros = NowMicros();
    Pending& p = pending[w];
    p.index_key = IndexKey(write.id);
    {
      MutexLock lock(&mu_);
      std::string existing;
      if (db_->Get(rocksdb::ReadOptions(), p.index_key, &existing).ok()) {
        results[w] = absl::AlreadyExistsError("block already on NVMe");
        continue;
      }
      absl::StatusOr<uint64_t> extent = extents_.Allocate(NvmeRecordBytes(payload_bytes));
      if (!extent.ok()) {
        results[w] = extent.status();
        continue;
      }
      p.entry = NvmeEntry{
          *extent,     payload_bytes, write.checksum, next_generation_++, header.created_micros,
          write.parent};
    }
    header.generation = p.entry.generation;
    absl::StatusOr<std::array<uint8_t, kNvmeSector>> encoded = EncodeNvmeHeader(header);
    if (!encoded.ok()) {
      MutexLock lock(&mu_);
      extents_.Free(p.entry.offset, NvmeRecordBytes(payload_bytes));
      results[w] = encoded.status();
      continue;
    }
    p.sector = NewSector();
    std::memcpy(p.sector.get(), encoded->data(), kNvmeSector);
    // One op per record: the header sector, then the payload, contiguous on disk.
    NvmeIo op;
    op.write = true;
    op.offset = p.entry.offset;
    op.pieces.push_back({p.sector.get(), kNvmeSector});
    for (const absl::Span<const uint8_t>& piece : write.payload) {
      if (piece.empty()) continue;
      op.pieces.push_back({const_cast<uint8_t*>(piece.data()), RoundUp(piece.size())});
    }
    op.length = NvmeRecordBytes(payload_bytes);
    op_of[w] = ops.size();
    ops.push_back(std::move(op));
  }
  file_->RunBatch(absl::MakeSpan(ops)).IgnoreError();  // each op's status is checked below
  for (size_t w = 0; w < writes.size(); ++w) {
    if (op_of[w] == SIZE_MAX) continue;
    Pending& p = pending[w];
    MutexLock lock(&mu_);
    if (!ops[op_of[w]].status.ok()) {
      extents_.Free(p.entry.offset, NvmeRecordBytes(p.entry.payload_bytes));
      results[w] = ops[op_of[w]].status;
      continue;
    }
    // The data is complete; only now may the index point at it.
    std::string existing;
    if (db_->Get(rocksdb::ReadOptions(), p.index_key, &existing).ok()) {  // a racing writer won
      extents_.Free(p.entry.offset, NvmeRecordBytes(p.entry.payload_bytes));
      results[w] = absl::AlreadyExistsError("block already on NVMe");
      continue;
    }
    rocksdb::Status put = db_->Put(rocksdb::WriteOptions(), p.index_key, EncodeEntry(p.entry));
    if (!put.ok()) {
      extents_.Free(p.entry.offset, NvmeRecordBytes(p.entry.payload_bytes));
      results[w] = absl::UnavailableError(absl::StrCat("NVMe index write: ", put.ToString()));
      continue;
    }
    blocks_.fetch_add(1);
  }
  return results;
}

absl::StatusOr<NvmeEntry> NvmeStore::Find(const NvmeBlockId& id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), IndexKey(id), &value);
  if (s.IsNotFound()) return absl::NotFoundError("not on NVMe");
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat("NVMe index read: ", s.ToString()));
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("NVMe index read: ", s.ToString()));
  NvmeEntry e;
  if (!DecodeEntry(value, &e)) return absl::DataLossError("NVMe index entry does not decode");
  return e;
}

absl::Status NvmeStore::Read(const NvmeBlockId& id, absl::Span<const absl::Span<uint8_t>> dest) {
  return ReadBatch({NvmeRead{id, dest}})[0];
}

std::vector<absl::Status> NvmeStore::ReadBatch(absl::Span<const NvmeRead> reads) {
  std::vector<absl::Status> results(reads.size());
  std::vector<NvmeEntry> entries(reads.size());
  std::vector<std::string> mismatch(reads.size());  // why a record failed verification
  std::vector<char> verified(reads.size(), 0);      // char: set from pool threads
  std::vector<AlignedSector> sectors;
  std::vector<NvmeIo> ops;
  std::vector<size_t> op_of(reads.size(), SIZE_MAX);
  for (size_t r = 0; r < reads.size(); ++r) {
    const NvmeRead& read = reads[r];
    absl::StatusOr<NvmeEntry> entry = Find(read.id);
    if (!entry.ok()) {
      results[r] = entry.status();
      continue;
    }
    entries[r] = *entry;
    uint64_t dest_bytes = 0;
    bool aligned = true;
    for (size_t i = 0; i < read.dest.size(); ++i) {
      aligned = aligned && reinterpret_cast<uintptr_t>(read.dest[i].data()) % kNvmeSector == 0 &&
                (i + 1 == read.dest.size() || read.dest[i].size() % kNvmeSector == 0);
      dest_bytes += read.dest[i].size();
    }
    if (!aligned) {
      results[r] = absl::InvalidArgumentError("NVMe destination pieces must be 4 KiB-aligned");
      continue;
    }
    if (dest_bytes != entry->payload_bytes) {
      results[r] = absl::InvalidArgumentError(absl::StrCat(
          "destination holds ", dest_bytes, " bytes, the block ", entry->payload_bytes));
      continue;
    }
    sectors.push_back(NewSector());
    NvmeIo op;
    op.offset = entry->offset;
    op.pieces.push_back({sectors.back().get(), kNvmeSector});
    for (const absl::Span<uint8_t>& piece : read.dest) {
      if (!piece.empty()) op.pieces.push_back({piece.data(), RoundUp(piece.size())});
    }
    op.length = NvmeRecordBytes(entry->payload_bytes);
    // Verified as soon as it lands, while the rest of the batch is read.
    op.on_done = [&, r](NvmeIo& done) {
      const NvmeBlockId& id = reads[r].id;
      const NvmeEntry& e = entries[r];
      absl::StatusOr<NvmeRecordHeader> header =
          DecodeNvmeHeader({static_cast<const uint8_t*>(done.pieces[0].iov_base), kNvmeSector});
      if (!header.ok()) {
        mismatch[r] = std::string(header.status().message());
      } else if (header->key != id.key || header->tenant != id.tenant ||
                 header->name_space != id.name_space || header->generation != e.generation ||
                 header->payload_bytes != e.payload_bytes ||
                 header->payload_checksum != e.checksum) {
        mismatch[r] = "record header does not match the index";
      } else {
        ChecksumStream hash;
        for (const absl::Span<uint8_t>& piece : reads[r].dest) hash.Update(piece);
        if (hash.Digest() != e.checksum) mismatch[r] = "payload checksum mismatch";
      }
      verified[r] = 1;
    };
    op_of[r] = ops.size();
    ops.push_back(std::move(op));
  }
  file_->RunBatch(absl::MakeSpan(ops)).IgnoreError();  // each op's status is checked below
  for (size_t r = 0; r < reads.size(); ++r) {
    if (op_of[r] == SIZE_MAX) continue;
    const NvmeIo& op = ops[op_of[r]];
    if (!op.status.ok()) {
      results[r] = op.status;
      continue;
    }
    if (!verified[r]) {
      results[r] = absl::InternalError("NVMe read completed without verification");
      continue;
    }
    if (mismatch[r].empty()) continue;
    if (Drop(IndexKey(reads[r].id), entries[r]).ok()) corrupt_drops_.fetch_add(1);
    results[r] = absl::DataLossError(absl::StrCat("NVMe block dropped: ", mismatch[r]));
  }
  return results;
}

absl::Status NvmeStore::Remove(const NvmeBlockId& id) {
  absl::StatusOr<NvmeEntry> entry = Find(id);
  if (!entry.ok()) return entry.status();
  return Drop(IndexKey(id), *entry);
}

void NvmeStore::ForEach(const std::function<void(const NvmeBlockId&, const NvmeEntry&)>& fn) const {
  rocksdb::ReadOptions options;
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  options.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    NvmeBlockId id;
    NvmeEntry e;
    // Open already dropped entries that do not decode.
    if (DecodeIndexKey(it->key().ToString(), &id) && DecodeEntry(it->value().ToString(), &e)) {
      fn(id, e);
    }
  }
  it.reset();
  db_->ReleaseSnapshot(snapshot);
}

absl::Status NvmeStore::Drop(const std::string& index_key, const NvmeEntry& entry) {
  MutexLock lock(&mu_);
  std::string value;
  NvmeEntry current;
  if (!db_->Get(rocksdb::ReadOptions(), index_key, &value).ok() || !DecodeEntry(value, &current) ||
      current.generation != entry.generation) {
    return absl::NotFoundError("not on NVMe (removed meanwhile)");
  }
  rocksdb::Status s = db_->Delete(rocksdb::WriteOptions(), index_key);  // index first
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("NVMe index delete: ", s.ToString()));
  extents_.Free(entry.offset, NvmeRecordBytes(entry.payload_bytes));  // then the extent
  blocks_.fetch_sub(1);
  return absl::OkStatus();
}

}  // namespace kvcache
