// Replay in a child process. An aten kernel given arguments no honest
// program would pass (an index past the end of a table, say) may crash
// rather than throw: libtorch 1.13's embedding_dense_backward does. A trace
// is untrusted input, so `cautograd replay` runs the program in a forked
// child and turns a crash into a one-line error naming the op.
#pragma once

#include <cstdint>
#include <string>

#include "lib/replay/replay.h"

namespace cautograd {

// Where and how a replay that returned false stopped: at an op (a signal
// killed the child, or the op raised), or before any op ran (a refusal).
struct ReplayFailure {
  enum class Kind { kRefused, kOpRaised, kCrashed };
  Kind kind = Kind::kRefused;
  int64_t call = -1, op = -1;  // the op that was running; -1: none
  int signal = 0;              // kCrashed
};

// As Replay, run in a child process. Call it before this process has run
// any libtorch op (the fork must not inherit a running thread pool).
// `failure`, if given, says where a replay that returns false stopped.
bool ReplayIsolated(const Trace& trace, const ReplayOptions& options, ReplayReport* report, std::string* err,
                    ReplayFailure* failure = nullptr);

}  // namespace cautograd
