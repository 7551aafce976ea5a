#include "common/transport_args.h"

#include <grpc/impl/codegen/grpc_types.h>

namespace kvcache {

std::vector<std::pair<std::string, int>> BulkTransferChannelArgs() {
  // Measured (docs/BENCHMARKS.md): on loopback these, BDP probing off, and
  // larger TCP read chunks all stay within run-to-run noise of gRPC's
  // defaults; the gRPC path tops out near 2 GB/s either way, which is why
  // bulk Fetch goes through the data port. We keep the two that follow from
  // the message sizes: a new stream may take a whole block before its first
  // window update, and a block fits one HTTP/2 frame.
  return {
      {GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20},
      {GRPC_ARG_HTTP2_MAX_FRAME_SIZE, (16 << 20) - 1},
  };
}

}  // namespace kvcache
