#include "client/transport.h"

namespace kvcache {

v1::FetchRequest MakeFetchRequest(const Transport::FetchCall& call,
                                  absl::Span<const FetchTarget> targets) {
  v1::FetchRequest request;
  request.set_namespace_(call.ns);
  request.set_max_chunk_bytes(call.chunk_bytes);
  for (const FetchTarget& t : targets) {
    v1::FetchItem* item = request.add_items();
    item->set_key(t.key.data(), t.key.size());
    item->set_offset(t.offset);
    item->set_length(t.dest.size());
  }
  return request;
}

}  // namespace kvcache
