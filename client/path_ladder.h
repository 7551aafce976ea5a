// The fallback ladder, the one copy of it: a call is tried on each path to
// the daemon, fastest first, until one gives the answer.
//   - A path whose transport broke is reported to `on_broken` (the client
//     counts it and sets the path aside) and the next path is asked.
//   - A partial answer (no error; the leading part answered) goes on to the
//     next path, and that path is not set aside.
//   - Anything else is the answer: the daemon's status, OK or not, or a
//     deadline it let pass (a hung daemon costs one deadline, not one per
//     path).
// `attempt(Transport&)` makes the call on one path, continuing where the
// path before it stopped. Returns the last attempt's outcome (a default one
// for an empty ladder).
#ifndef KVCACHE_CLIENT_PATH_LADDER_H_
#define KVCACHE_CLIENT_PATH_LADDER_H_

#include "client/transport.h"

namespace kvcache {

template <typename Ladder, typename OnBroken, typename Attempt>
Transport::Outcome OverPaths(const Ladder& ladder, OnBroken&& on_broken, Attempt&& attempt) {
  Transport::Outcome outcome;
  for (const auto& path : ladder) {
    outcome = attempt(*path);
    if (outcome.transport_failed) {
      on_broken(*path);
      continue;
    }
    if (!outcome.partial) break;
  }
  return outcome;
}

}  // namespace kvcache

#endif  // KVCACHE_CLIENT_PATH_LADDER_H_
