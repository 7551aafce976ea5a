// The Lookup call itself, whichever front end carries it (gRPC or the data
// port): parse the chain, walk the index, answer in the form asked.
//
// Thread safety: may be called from any thread.
#ifndef KVCACHE_KVSTORE_SERVER_LOOKUP_HANDLER_H_
#define KVCACHE_KVSTORE_SERVER_LOOKUP_HANDLER_H_

#include <string>

#include "absl/status/status.h"
#include "kvcache/v1/kvcache.pb.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

// Answers `request` for `tenant` into `response`: how many leading keys are
// cached, and each one's size and tier (as `blocks` for a request of
// `keys`, packed for one of `packed_keys`). INVALID_ARGUMENT for a bad
// namespace, a bad key, both key forms, or more keys than the limit. Counts
// the lookup, its hits and (with request metrics) why it stopped short.
absl::Status AnswerLookup(ServiceContext& context, const std::string& tenant,
                          const v1::LookupRequest& request, v1::LookupResponse& response);

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_LOOKUP_HANDLER_H_
