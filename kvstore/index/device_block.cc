#include "kvstore/index/device_block.h"

#include <algorithm>

namespace kvcache {

std::unique_ptr<DeviceBlock> DeviceBlock::Allocate(DeviceMemory& memory, uint64_t size,
                                                   uint64_t checksum) {
  std::vector<uint32_t> pages;
  if (!memory.pool().Allocate(memory.pool().PagesFor(size), &pages)) return nullptr;
  return std::unique_ptr<DeviceBlock>(new DeviceBlock(memory, std::move(pages), size, checksum));
}

template <typename Fn>
void DeviceBlock::ForEachPiece(const PageRun& host, Fn fn) const {
  const DevicePagePool& pool = memory_.pool();
  uint64_t offset = 0;
  host.ForEachPiece(0, size_, [&](const uint8_t* data, size_t len) {
    // Cut each host piece where a device page ends.
    while (len > 0) {
      const uint64_t in_page = offset % pool.page_bytes();
      const uint64_t n = std::min<uint64_t>(len, pool.page_bytes() - in_page);
      fn(pool.PageData(pages_[offset / pool.page_bytes()]) + in_page, data, n);
      data += n;
      len -= n;
      offset += n;
    }
  });
}

std::vector<CopyOp> DeviceBlock::UploadOps(const PageRun& host) const {
  std::vector<CopyOp> ops;
  ForEachPiece(host, [&](uint8_t* device, const uint8_t* h, uint64_t n) {
    ops.push_back({device, h, n});
  });
  return ops;
}

std::vector<CopyOp> DeviceBlock::DownloadOps(PageRun& host) const {
  std::vector<CopyOp> ops;
  ForEachPiece(host, [&](uint8_t* device, const uint8_t* h, uint64_t n) {
    // Our caller's own pages: writable through the non-const run.
    ops.push_back({const_cast<uint8_t*>(h), device, n});
  });
  return ops;
}

std::vector<DeviceBlock::PoolRange> DeviceBlock::PoolRanges(uint64_t offset,
                                                            uint64_t length) const {
  const uint64_t page = memory_.pool().page_bytes();
  std::vector<PoolRange> ranges;
  while (length > 0) {
    const uint64_t in_page = offset % page;
    const uint64_t n = std::min(length, page - in_page);
    const uint64_t at = uint64_t{pages_[offset / page]} * page + in_page;
    if (!ranges.empty() && ranges.back().offset + ranges.back().length == at) {
      ranges.back().length += n;
    } else {
      ranges.push_back({at, n});
    }
    offset += n;
    length -= n;
  }
  return ranges;
}

}  // namespace kvcache
