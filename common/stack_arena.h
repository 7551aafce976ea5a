// A protobuf arena whose first block is a buffer inside this object, for
// one call's messages on the stack: a request and its answer (a lookup's
// chain and hits) cost no heap allocation until they outgrow it.
//
//   StackArena stack;
//   auto* request = google::protobuf::Arena::CreateMessage<Req>(stack.arena());
//
// Thread safety: as google::protobuf::Arena.
#ifndef KVCACHE_COMMON_STACK_ARENA_H_
#define KVCACHE_COMMON_STACK_ARENA_H_

#include <cstddef>

#include "google/protobuf/arena.h"

namespace kvcache {

class StackArena {
 public:
  static constexpr size_t kFirstBlockBytes = 8 << 10;

  StackArena() : arena_(Options(first_block_)) {}
  StackArena(const StackArena&) = delete;
  StackArena& operator=(const StackArena&) = delete;

  google::protobuf::Arena* arena() { return &arena_; }

 private:
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kFirstBlockBytes;
    return options;
  }

  alignas(8) char first_block_[kFirstBlockBytes];  // before arena_: built first
  google::protobuf::Arena arena_;
};

}  // namespace kvcache

#endif  // KVCACHE_COMMON_STACK_ARENA_H_
