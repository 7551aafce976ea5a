// A local worker's side of the block directory (proto/block_directory_layout.h):
// copies a listed block straight out of the daemon's arena mapping, with no
// request to the daemon, and tells whether the copy is the block's bytes.
//
// Nothing it reads is trusted: slot fields are validated (pages inside the
// arena, the range inside the block) before any page is touched, and a copy
// counts only if the slot's sequence number was even and unchanged around
// it. A block that is not listed, or that changed meanwhile, is left to the
// lease path.
//
// Thread safety: Copy may be called from any thread (it only reads).
#ifndef KVCACHE_CLIENT_BLOCK_DIRECTORY_READER_H_
#define KVCACHE_CLIENT_BLOCK_DIRECTORY_READER_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "key/block_key.h"
#include "proto/block_directory_layout.h"

namespace kvcache {

class BlockDirectoryReader {
 public:
  // Over a directory and an arena mapped read-only, both outliving the
  // reader. INVALID_ARGUMENT if the directory's header is not one this
  // reader knows or does not fit the two mappings.
  static absl::StatusOr<std::unique_ptr<BlockDirectoryReader>> Create(const uint8_t* directory,
                                                                      uint64_t directory_bytes,
                                                                      const uint8_t* arena,
                                                                      uint64_t arena_bytes);

  enum class Result {
    kCopied,   // dest holds bytes [offset, offset + dest.size()) of the block
    kMissing,  // not listed, or the range is not inside it; dest untouched
    kChanged,  // withdrawn or relisted during the copy; dest holds garbage
  };
  // Copies [offset, offset + dest.size()) of block (ns, key). `streaming`
  // uses non-temporal stores (for copies too large to stay in cache).
  Result Copy(uint32_t ns, const BlockKey& key, uint64_t offset, absl::Span<uint8_t> dest,
              bool streaming) const;

  // The size of block (ns, key) if the directory lists it now, read from a
  // slot that was consistent (its seq even and unchanged around the read);
  // nullopt if it is not listed or is being changed. Touches no arena page.
  // *changed (if given) is set when the block is listed but its slot was
  // being changed, so that a nullopt is no answer at all.
  std::optional<uint64_t> ListedSize(uint32_t ns, const BlockKey& key,
                                     bool* changed = nullptr) const;

  // Whether the daemon lists every block it caches now: then a key that
  // ListedSize does not find (and did not see change) is not cached.
  bool complete() const;
  // Whether the daemon's presence table says no block of (ns, key) is cached
  // in any tier, so a lookup may end there with no request. False where the
  // daemon keeps no presence table.
  bool Absent(uint32_t ns, const BlockKey& key) const;
  // Whether the daemon renewed the directory's heartbeat within
  // kDirectoryStaleMs: only then is anything read from it an answer.
  bool live() const;

 private:
  // A consistent read of the slot listing (ns, key).
  struct SlotRead {
    const DirectorySlot* slot = nullptr;  // null: not listed
    uint64_t seq = 0;
    uint64_t size = 0;
    uint32_t first_page = 0;
    bool changed = false;  // listed, but changed while it was read
  };
  SlotRead FindSlot(uint32_t ns, const BlockKey& key) const;

  BlockDirectoryReader(const DirectoryHeader& header, const uint8_t* directory,
                       const uint8_t* arena)
      : header_(header), directory_(directory), arena_(arena) {}
  const DirectorySlot& Slot(uint64_t index) const {
    return *reinterpret_cast<const DirectorySlot*>(directory_ + header_.slots_offset +
                                                   index * sizeof(DirectorySlot));
  }
  uint32_t NextPage(uint32_t page) const;

  const DirectoryHeader header_;  // validated copy
  const uint8_t* const directory_;
  const uint8_t* const arena_;
};

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_BLOCK_DIRECTORY_READER_H_
