// A LookupRequest written straight into a byte buffer, without building the
// message: the request a client sends most (a chain of up to thousands of
// keys) costs one copy of its keys into a buffer the caller reuses. And the
// daemon's answer read back, the same for every path.
//
// Thread safety: a free function; no shared state.
#ifndef KVCACHE_CLIENT_LOOKUP_WIRE_H_
#define KVCACHE_CLIENT_LOOKUP_WIRE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/requests.h"
#include "key/block_key.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

// Whether every key of `keys` (not empty) has the same size, so that they
// can go as LookupRequest.packed_keys.
bool PackableKeys(absl::Span<const BlockKey> keys);

// Appends `keys` back to back to `out`: LookupRequest.packed_keys.
// REQUIRES: PackableKeys(keys).
void AppendPackedKeys(absl::Span<const BlockKey> keys, std::string* out);

// Appends to `out` the wire bytes of a v1.LookupRequest for namespace `ns`
// and `keys`: as packed_keys when `packed` (REQUIRES: PackableKeys), else
// as one `keys` field per key. Parsing them gives exactly the message
// that sets those fields.
void AppendLookupRequest(const std::string& ns, absl::Span<const BlockKey> keys, bool packed,
                         std::string* out);

// Appends the daemon's answer for `asked` keys to *result, in the form the
// request was made in (`packed` or not). INTERNAL if it does not add up: more
// hits than keys asked, or a size or tier missing or out of range.
absl::Status ReadLookupResponse(const v1::LookupResponse& response, size_t asked, bool packed,
                                LookupResult* result);

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_LOOKUP_WIRE_H_
