#include "kvstore/tiers/nvme_tier.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"
#include "common/log.h"

namespace kvcache {

absl::StatusOr<std::unique_ptr<NvmeTier>> NvmeTier::Open(const Options& options,
                                                         NamespaceTable* names) {
  absl::StatusOr<std::unique_ptr<NvmeStore>> store = NvmeStore::Open(options.store);
  if (!store.ok()) return store.status();
  if (!(*store)->open_note().empty()) {
    Log(LogLevel::kWarning, absl::StrCat("NVMe tier: ", (*store)->open_note()));
  }
  return std::unique_ptr<NvmeTier>(new NvmeTier(options, std::move(*store), names));
}

NvmeTier::NvmeTier(const Options& options, std::unique_ptr<NvmeStore> store, NamespaceTable* names)
    : options_(options),
      capacity_bytes_(options.store.bytes),
      store_(std::move(store)),
      names_(names),
      budget_bytes_(static_cast<double>(options.write_bytes_per_sec)),
      budget_at_(absl::Now()) {}

NvmeBlockId NvmeTier::IdOf(NamespaceId ns, const BlockMeta& meta) const {
  NamespaceName name = names_->Name(ns);
  return {std::move(name.tenant), std::move(name.name), meta.key.ToBytes()};
}

bool NvmeTier::Pass(Gate NvmeTier::*which) {
  MutexLock lock(&mu_);
  Gate& gate = this->*which;
  if (gate.open) return true;
  const absl::Time now = absl::Now();
  if (now < gate.retry_at) return false;
  gate.retry_at = now + options_.retry_interval;  // this op is the probe
  return true;
}

void NvmeTier::Settle(Gate NvmeTier::*which, const absl::Status& status, const char* what) {
  const bool io_error = status.code() == absl::StatusCode::kUnavailable;
  MutexLock lock(&mu_);
  Gate& gate = this->*which;
  if (io_error) {
    if (gate.open) {
      Log(LogLevel::kError, absl::StrCat("NVMe tier: ", what, " disabled: ", status.message(),
                                         "; DRAM keeps serving, retrying every ",
                                         absl::FormatDuration(options_.retry_interval)));
    }
    gate.open = false;
    gate.why = std::string(status.message());
    gate.retry_at = absl::Now() + options_.retry_interval;
  } else if (!gate.open) {
    Log(LogLevel::kInfo, absl::StrCat("NVMe tier: ", what, " work again; enabled"));
    gate.open = true;
    gate.why.clear();
  }
}

absl::Status NvmeTier::Write(NamespaceId ns, const CachedBlock& block) {
  return WriteBatch({BlockRef{ns, &block}})[0];
}

std::vector<absl::Status> NvmeTier::WriteBatch(absl::Span<const BlockRef> blocks) {
  if (!Pass(&NvmeTier::writes_)) {
    return std::vector<absl::Status>(blocks.size(),
                                     absl::UnavailableError("NVMe writes are disabled"));
  }
  std::vector<std::vector<absl::Span<const uint8_t>>> pieces(blocks.size());
  std::vector<NvmeWrite> writes;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const BlockMeta& meta = blocks[i].block->meta();
    blocks[i].block->pages().ForEachPiece(
        0, meta.size, [&](const uint8_t* data, size_t len) { pieces[i].emplace_back(data, len); });
    writes.push_back({IdOf(blocks[i].ns, meta), meta.parent.ToBytes(), meta.checksum, pieces[i]});
  }
  std::vector<absl::Status> results = store_->WriteBatch(writes);
  absl::Status worst = absl::OkStatus();
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) {
      written_blocks_.fetch_add(1, std::memory_order_relaxed);
      written_bytes_.fetch_add(blocks[i].block->meta().size, std::memory_order_relaxed);
    } else if (results[i].code() == absl::StatusCode::kUnavailable) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      worst = results[i];
    }
  }
  Settle(&NvmeTier::writes_, worst, "writes");
  return results;
}

absl::Status NvmeTier::Read(NamespaceId ns, const BlockMeta& meta, PageRun& pages) {
  if (!Pass(&NvmeTier::reads_)) return absl::UnavailableError("NVMe reads are disabled");
  std::vector<absl::Span<uint8_t>> pieces;
  pages.ForEachWritablePiece(0, meta.size, [&](uint8_t* data, size_t len) {
    pieces.emplace_back(data, len);
    return true;
  });
  absl::Status s = store_->Read(IdOf(ns, meta), pieces);
  Settle(&NvmeTier::reads_, s, "reads");
  if (s.ok()) {
    read_blocks_.fetch_add(1, std::memory_order_relaxed);
    read_bytes_.fetch_add(meta.size, std::memory_order_relaxed);
  } else if (s.code() == absl::StatusCode::kUnavailable) {
    read_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return s;
}

void NvmeTier::Remove(NamespaceId ns, const BlockMeta& meta) {
  store_->Remove(IdOf(ns, meta)).IgnoreError();  // NOT_FOUND is fine
}

bool NvmeTier::Admit(uint64_t hits, uint64_t bytes, absl::Time now) {
  if (hits < options_.admit_min_hits) {
    not_admitted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (options_.write_bytes_per_sec == 0) return true;
  MutexLock lock(&mu_);
  const double rate = static_cast<double>(options_.write_bytes_per_sec);
  // Refill, holding at most one second's worth.
  budget_bytes_ =
      std::min(rate, budget_bytes_ + rate * std::max(0.0, absl::ToDoubleSeconds(now - budget_at_)));
  budget_at_ = std::max(budget_at_, now);
  if (budget_bytes_ <= 0) {
    not_admitted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  budget_bytes_ -= static_cast<double>(bytes);  // may go below 0: the next waits longer
  return true;
}

void NvmeTier::ForEachStored(const std::function<void(NamespaceId, const BlockMeta&)>& fn) {
  std::vector<NvmeBlockId> bad;
  store_->ForEach([&](const NvmeBlockId& id, const NvmeEntry& e) {
    absl::StatusOr<NamespaceId> ns = names_->Intern(id.tenant, id.name_space);
    absl::StatusOr<BlockKey> key = BlockKey::FromBytes(id.key);
    absl::StatusOr<BlockKey> parent =
        e.parent.empty() ? BlockKey() : BlockKey::FromBytes(e.parent);
    if (!ns.ok() || !key.ok() || !parent.ok()) {
      bad.push_back(id);
      return;
    }
    BlockMeta meta;
    meta.key = *key;
    meta.parent = *parent;
    meta.size = e.payload_bytes;
    meta.checksum = e.checksum;
    meta.created_micros = e.created_micros;
    fn(*ns, meta);
  });
  for (const NvmeBlockId& id : bad) store_->Remove(id).IgnoreError();
}

bool NvmeTier::writes_open() const {
  MutexLock lock(&mu_);
  return writes_.open;
}

bool NvmeTier::enabled() const {
  MutexLock lock(&mu_);
  return writes_.open && reads_.open;
}

std::string NvmeTier::Detail() const {
  std::string detail = absl::StrCat(store_->engine_name(), ", ", FormatBytes(capacity_bytes_),
                                    " in ", options_.store.dir);
  MutexLock lock(&mu_);
  if (!writes_.open) absl::StrAppend(&detail, "; writes disabled: ", writes_.why);
  if (!reads_.open) absl::StrAppend(&detail, "; reads disabled: ", reads_.why);
  return detail;
}

NvmeTier::Counters NvmeTier::counters() const {
  auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  Counters c;
  c.written_blocks = load(written_blocks_);
  c.written_bytes = load(written_bytes_);
  c.read_blocks = load(read_blocks_);
  c.read_bytes = load(read_bytes_);
  c.corrupt_drops = store_->corrupt_drops();
  c.write_errors = load(write_errors_);
  c.read_errors = load(read_errors_);
  c.not_admitted = load(not_admitted_);
  return c;
}

}  // namespace kvcache
