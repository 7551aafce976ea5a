// Writes one framed same-host message (proto/local_wire.h): the head and the
// serialized body in one writev. Client and daemon both send with it.
//
// Thread safety: a free function; the caller serializes writes to one fd.
#ifndef KVCACHE_PROTO_LOCAL_MESSAGE_IO_H_
#define KVCACHE_PROTO_LOCAL_MESSAGE_IO_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "proto/local_wire.h"

namespace kvcache {

// False if the socket took less than the whole message (an error or its
// timeout): the stream is then out of step.
// `waiting_cpu`: the CPU the sender waits on for the answer (local_wire.h);
// -1: not said.
// `ahead`: whole framed messages (AppendLocalMessage) written first, in the
// same writev, so that the daemon takes them in with the same wake-up.
bool WriteLocalMessage(int fd, LocalMessage type, const google::protobuf::Message& body,
                       int waiting_cpu = -1, absl::string_view ahead = {});

// Appends one framed message (no waiting CPU) to `*out`, to be written later
// ahead of another.
void AppendLocalMessage(LocalMessage type, const google::protobuf::Message& body, std::string* out);

}  // namespace kvcache

#endif  // KVCACHE_PROTO_LOCAL_MESSAGE_IO_H_
