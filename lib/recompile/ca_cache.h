// Compiled autograd's cache replayed over the keys compiled autograd itself
// computed (the trace's "compiled_autograd" blocks, recorded on PyTorch
// 2.4+). The trie, the NodeCall numbering, the key sizes, the size inputs
// and the log lines are compiled autograd's own; what cautograd adds is
// where each size comes from and, from the recorded calls, what changed at
// a node whose key changed. docs/recompile.md says what it cannot see.
#pragma once

#include <vector>

#include "lib/recompile/cache_sim.h"

namespace cautograd {

// Whether every call has compiled autograd's key.
bool HaveRealKeys(const std::vector<CacheCall>& calls);

// The same result type as SimulateCache, with keys = "compiled_autograd".
// DynamicMode: kAuto is compiled autograd's dynamic=False (torch.compile
// with compiled_autograd=True: sizes start static), kAll its dynamic=True
// (compiled_autograd._enable's default: every size dynamic except those a
// node keeps static), kStatic never marks a size dynamic.
CacheSimulation SimulateRealCache(const std::vector<CacheCall>& calls, DynamicMode mode);

}  // namespace cautograd
