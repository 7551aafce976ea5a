// The header that announces one block of a put, the same on every path
// (gRPC, data port, same-host lease).
#ifndef KVCACHE_CLIENT_PUT_HEADER_H_
#define KVCACHE_CLIENT_PUT_HEADER_H_

#include <string>

#include "client/requests.h"
#include "kvcache/v1/kvcache.pb.h"

namespace kvcache {

// `parent` is the parent key's bytes (empty for a root block). Computes the
// payload's checksum unless `with_checksum` is false (a caller that hashes
// the payload as it copies it, and sets the checksum itself).
v1::PutBlockHeader MakePutHeader(const std::string& ns, const std::string& parent,
                                 const PutBlock& block, bool with_checksum = true);

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_PUT_HEADER_H_
