// Replay in a child process. An aten kernel given arguments no honest
// program would pass (an index past the end of a table, say) may crash
// rather than throw: libtorch 1.13's embedding_dense_backward does. A trace
// is untrusted input, so `cautograd replay` runs the program in a forked
// child and turns a crash into a one-line error naming the op.
#pragma once

#include <string>

#include "lib/replay/replay.h"

namespace cautograd {

// As Replay, run in a child process. Call it before this process has run
// any libtorch op (the fork must not inherit a running thread pool).
bool ReplayIsolated(const Trace& trace, const ReplayOptions& options, ReplayReport* report, std::string* err);

}  // namespace cautograd
