// What PyTorch's compiled autograd would key its cache on for one recorded
// call, derived from the call's graph, ops and tensors (see
// docs/trace-format.md, "guards"). Pure function of the call, so `recompile`
// and `diff` can recompute it and the reader can trust nothing it is given.
#pragma once

#include "lib/trace/trace.h"

namespace cautograd {

Guards ComputeGuards(const Call& call);

// Executed nodes of a call, in execution order.
std::vector<const Node*> ExecutedNodes(const Call& call);

}  // namespace cautograd
