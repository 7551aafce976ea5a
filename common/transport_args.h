// gRPC channel arguments for moving megabyte blocks, used by both the daemon
// and the client so both ends of a connection agree. What each one bought is
// measured in docs/BENCHMARKS.md.
#ifndef KVCACHE_COMMON_TRANSPORT_ARGS_H_
#define KVCACHE_COMMON_TRANSPORT_ARGS_H_

#include <string>
#include <utility>
#include <vector>

namespace kvcache {

// (argument name, value) pairs for grpc::ChannelArguments::SetInt and
// grpc::ServerBuilder::AddChannelArgument.
std::vector<std::pair<std::string, int>> BulkTransferChannelArgs();

}  // namespace kvcache

#endif  // KVCACHE_COMMON_TRANSPORT_ARGS_H_
