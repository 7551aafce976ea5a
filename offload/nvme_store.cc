#include "offload/nvme_store.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client/key/checksum.h"
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

}  // namespace

absl::StatusOr<std::unique_ptr<NvmeStore>> NvmeStore::Open(const Options& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("NVMe store needs a directory");
  mkdir(options.dir.c_str(), 0700);  // fine if it exists; opening below says if unusable
  NvmeFile::Options file_options;
  file_options.path = options.data_path.empty() ? options.dir + "/blocks.data" : options.data_path;
  file_options.bytes = options.bytes;
  file_options.engine = options.engine;
  file_options.queue_depth = options.queue_depth;
  absl::StatusOr<std::unique_ptr<NvmeFile>> file = NvmeFile::Open(file_options);
  if (!file.ok()) return file.status();
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.dir + "/index", &db);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the NVMe index in ", options.dir, "/index: ", s.ToString()));
  }
  std::unique_ptr<NvmeStore> store(new NvmeStore(std::move(*file), db, options.bytes));
  // Rebuild free space; an entry that overlaps what is already claimed (or
  // does not decode) cannot be trusted and is dropped.
  std::vector<std::string> bad;
  uint64_t max_generation = 0;
  {
    MutexLock lock(&store->mu_);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      NvmeEntry e;
      NvmeBlockId id;
      if (!DecodeIndexKey(it->key().ToString(), &id) || !DecodeEntry(it->value().ToString(), &e) ||
          !store->extents_.MarkUsed(e.offset, NvmeRecordBytes(e.payload_bytes)).ok()) {
        bad.push_back(it->key().ToString());
        continue;
      }
      max_generation = std::max(max_generation, e.generation);
      store->blocks_.fetch_add(1);
    }
    store->next_generation_ = max_generation + 1;
  }
  for (const std::string& k : bad) {
    db->Delete(rocksdb::WriteOptions(), k);
    store->corrupt_drops_.fetch_add(1);
  }
  return store;
}

NvmeStore::NvmeStore(std::unique_ptr<NvmeFile> file, rocksdb::DB* db, uint64_t bytes)
    : file_(std::move(file)), db_(db), extents_(bytes, kNvmeSector) {}

NvmeStore::~NvmeStore() { delete db_; }

uint64_t NvmeStore::used_bytes() const {
  MutexLock lock(&mu_);
  return extents_.used_bytes();
}

absl::Status NvmeStore::Write(const NvmeBlockId& id, const std::string& parent,
                              uint64_t checksum,
                              absl::Span<const absl::Span<const uint8_t>> payload) {
  uint64_t payload_bytes = 0;
  for (size_t i = 0; i < payload.size(); ++i) {
    if (reinterpret_cast<uintptr_t>(payload[i].data()) % kNvmeSector != 0 ||
        (i + 1 < payload.size() && payload[i].size() % kNvmeSector != 0)) {
      return absl::InvalidArgumentError("NVMe payload pieces must be 4 KiB-aligned");
    }
    payload_bytes += payload[i].size();
  }
  NvmeRecordHeader header;
  header.key = id.key;
  header.tenant = id.tenant;
  header.name_space = id.name_space;
  header.payload_bytes = payload_bytes;
  header.payload_checksum = checksum;
  header.created_micros = NowMicros();
  const std::string index_key = IndexKey(id);
  uint64_t offset = 0;
  {
    MutexLock lock(&mu_);
    std::string existing;
    if (db_->Get(rocksdb::ReadOptions(), index_key, &existing).ok()) {
      return absl::AlreadyExistsError("block already on NVMe");
    }
    absl::StatusOr<uint64_t> extent = extents_.Allocate(NvmeRecordBytes(payload_bytes));
    if (!extent.ok()) return extent.status();
    offset = *extent;
    header.generation = next_generation_++;
  }
  auto free_extent = [&] {
    MutexLock lock(&mu_);
    extents_.Free(offset, NvmeRecordBytes(payload_bytes));
  };
  absl::StatusOr<std::array<uint8_t, kNvmeSector>> encoded = EncodeNvmeHeader(header);
  if (!encoded.ok()) {
    free_extent();
    return encoded.status();
  }
  AlignedSector sector = NewSector();
  std::memcpy(sector.get(), encoded->data(), kNvmeSector);
  std::vector<NvmeIo> ops = {{true, offset, sector.get(), kNvmeSector}};
  uint64_t at = offset + kNvmeSector;
  for (const absl::Span<const uint8_t>& piece : payload) {
    if (piece.empty()) continue;
    ops.push_back({true, at, const_cast<uint8_t*>(piece.data()), RoundUp(piece.size())});
    at += piece.size();
  }
  if (absl::Status s = file_->RunBatch(absl::MakeSpan(ops)); !s.ok()) {
    free_extent();
    return s;
  }
  // The data is complete; only now may the index point at it.
  NvmeEntry entry{offset, payload_bytes, checksum, header.generation, header.created_micros,
                  parent};
  MutexLock lock(&mu_);
  std::string existing;
  if (db_->Get(rocksdb::ReadOptions(), index_key, &existing).ok()) {  // a racing writer won
    extents_.Free(offset, NvmeRecordBytes(payload_bytes));
    return absl::AlreadyExistsError("block already on NVMe");
  }
  rocksdb::Status put = db_->Put(rocksdb::WriteOptions(), index_key, EncodeEntry(entry));
  if (!put.ok()) {
    extents_.Free(offset, NvmeRecordBytes(payload_bytes));
    return absl::UnavailableError(absl::StrCat("NVMe index write: ", put.ToString()));
  }
  blocks_.fetch_add(1);
  return absl::OkStatus();
}

absl::StatusOr<NvmeEntry> NvmeStore::Find(const NvmeBlockId& id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), IndexKey(id), &value);
  if (s.IsNotFound()) return absl::NotFoundError("not on NVMe");
  NvmeEntry e;
  if (!s.ok() || !DecodeEntry(value, &e)) {
    return absl::UnavailableError(absl::StrCat("NVMe index read: ", s.ToString()));
  }
  return e;
}

absl::Status NvmeStore::Read(const NvmeBlockId& id, absl::Span<const absl::Span<uint8_t>> dest) {
  absl::StatusOr<NvmeEntry> entry = Find(id);
  if (!entry.ok()) return entry.status();
  uint64_t dest_bytes = 0;
  for (size_t i = 0; i < dest.size(); ++i) {
    if (reinterpret_cast<uintptr_t>(dest[i].data()) % kNvmeSector != 0 ||
        (i + 1 < dest.size() && dest[i].size() % kNvmeSector != 0)) {
      return absl::InvalidArgumentError("NVMe destination pieces must be 4 KiB-aligned");
    }
    dest_bytes += dest[i].size();
  }
  if (dest_bytes != entry->payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("destination holds ", dest_bytes,
                                                   " bytes, the block ", entry->payload_bytes));
  }
  AlignedSector sector = NewSector();
  std::vector<NvmeIo> ops = {{false, entry->offset, sector.get(), kNvmeSector}};
  uint64_t at = entry->offset + kNvmeSector;
  for (const absl::Span<uint8_t>& piece : dest) {
    if (piece.empty()) continue;
    ops.push_back({false, at, piece.data(), RoundUp(piece.size())});
    at += piece.size();
  }
  if (absl::Status s = file_->RunBatch(absl::MakeSpan(ops)); !s.ok()) return s;
  absl::StatusOr<NvmeRecordHeader> header = DecodeNvmeHeader({sector.get(), kNvmeSector});
  std::string why;
  if (!header.ok()) {
    why = std::string(header.status().message());
  } else if (header->key != id.key || header->tenant != id.tenant ||
             header->name_space != id.name_space || header->generation != entry->generation ||
             header->payload_bytes != entry->payload_bytes ||
             header->payload_checksum != entry->checksum) {
    why = "record header does not match the index";
  } else {
    ChecksumStream hash;
    for (const absl::Span<uint8_t>& piece : dest) hash.Update(piece);
    if (hash.Digest() != entry->checksum) why = "payload checksum mismatch";
  }
  if (why.empty()) return absl::OkStatus();
  if (Drop(IndexKey(id), *entry).ok()) corrupt_drops_.fetch_add(1);
  return absl::DataLossError(absl::StrCat("NVMe block dropped: ", why));
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
