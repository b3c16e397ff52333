// Delta debugging (Zeller and Hildebrandt's ddmin): the smallest set of
// items this finds on which a test still holds. `cautograd reduce` runs it
// over a trace's calls, then over a call's ops.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace cautograd {

// `test` gets a candidate (a subset of the items, in their order) and says
// whether the condition holds on it. It may grow the candidate to what the
// items need to be tried at all (CallSlicer::Close); on success the grown
// set is what reduction goes on from, unless it is no smaller than before.
// `items` must hold already (DeltaDebug does not test it); the result is
// 1-minimal as far as the candidates' growth allows: removing any one item
// of it makes the test fail, or makes a candidate no smaller.
using DeltaTest = std::function<bool(std::vector<int64_t>* candidate)>;
std::vector<int64_t> DeltaDebug(std::vector<int64_t> items, const DeltaTest& test);

}  // namespace cautograd
