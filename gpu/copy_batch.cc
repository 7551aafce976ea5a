#include "gpu/copy_batch.h"

namespace kvcache {

std::vector<CopyOp> CoalesceCopies(absl::Span<const CopyOp> ops) {
  std::vector<CopyOp> out;
  out.reserve(ops.size());
  for (const CopyOp& op : ops) {
    if (op.bytes == 0) continue;
    if (!out.empty()) {
      CopyOp& last = out.back();
      if (static_cast<char*>(last.dst) + last.bytes == op.dst &&
          static_cast<const char*>(last.src) + last.bytes == op.src) {
        last.bytes += op.bytes;
        continue;
      }
    }
    out.push_back(op);
  }
  return out;
}

}  // namespace kvcache
