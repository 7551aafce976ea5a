#include "client/put_header.h"

#include "key/checksum.h"

namespace kvcache {

v1::PutBlockHeader MakePutHeader(const std::string& ns, const std::string& parent,
                                 const PutBlock& block, bool with_checksum) {
  v1::PutBlockHeader header;
  header.set_namespace_(ns);
  header.set_key(block.key.data(), block.key.size());
  if (!block.root) header.set_parent_key(parent);
  const absl::string_view bytes = block.bytes();
  header.set_size(bytes.size());
  header.set_evict_first(block.evict_first);
  if (with_checksum) {
    header.set_checksum(
        BlockChecksum({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
  }
  return header;
}

}  // namespace kvcache
