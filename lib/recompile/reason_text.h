// The words a person reads for the cache simulation's data: a node by its
// NodeCall, a size input by where it comes from, a miss reason with its
// node, tensor, dimension, old and new value. `recompile` and `diff` both
// print these, so a recompile reason reads the same in either.
#pragma once

#include <cstdint>
#include <string>

#include "lib/recompile/cache_sim.h"

namespace cautograd {

// "AddmmBackward0 (NodeCall 4)", "torch::autograd::AccumulateGrad (NodeCall 3, fc3.bias)".
std::string NodeCallText(const std::string& type, int64_t node_call, const std::string& leaf);

// "dim 0 of saved t7 in NllLossBackward0 (NodeCall 0)", or for an op's
// argument "element 1 of argument 'size' of aten::view (op 3) in ...".
std::string SizeInputText(const SizeInput& size);

// One reason: "sizes[2] = dim 0 of saved t14 in NllLossBackward0 (NodeCall 0): 4 -> 2, now dynamic".
std::string ReasonText(const MissReason& reason);

}  // namespace cautograd
