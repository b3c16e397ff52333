// What changed between two traces: the diff engine. It pairs the calls of
// two traces (by index, or one chosen call of each), matches their nodes, ops
// and tensors by structure (lib/diff/match.h), and returns the differences
// as data, most important first. Renderers (lib/diff/render.h) turn them
// into text, JSON or Markdown; the CLI decides the exit status from them.
//
// No libtorch: guards come from the recompile simulation, values are decoded
// from the trace's bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/recompile/cache_sim.h"
#include "lib/trace/tolerance.h"
#include "lib/trace/trace.h"

namespace cautograd {

// The groups a difference falls in, in the order they are reported: the
// graph's shape first, then wrong results, then recompiles, then the ops'
// details, then speed.
enum class DiffGroup { kGraph, kNumerics, kGuards, kOps, kTiming };
constexpr DiffGroup kDiffGroups[] = {DiffGroup::kGraph, DiffGroup::kNumerics, DiffGroup::kGuards,
                                     DiffGroup::kOps, DiffGroup::kTiming};
const char* DiffGroupName(DiffGroup group);

// A set of groups, as --fail-on names them.
using GroupSet = uint32_t;
constexpr GroupSet GroupBit(DiffGroup g) { return 1u << unsigned(g); }
constexpr GroupSet kDefaultFailOn =
    GroupBit(DiffGroup::kGraph) | GroupBit(DiffGroup::kGuards) | GroupBit(DiffGroup::kNumerics);
// "graph,guards", "all" or "none". False and *bad = the unknown name.
bool ParseGroupSet(const std::string& text, GroupSet* set, std::string* bad);
std::vector<std::string> GroupSetNames(GroupSet set);  // in report order

// One side's node: "AddmmBackward0 (NodeCall 4, fc2.bias)".
struct NodeRef {
  int64_t id = -1;         // -1: no node on this side
  int64_t node_call = -1;  // position among executed nodes; -1: did not run
  std::string type;
  std::string leaf;  // parameter name, where the node is a named leaf's AccumulateGrad
};

// One side's op: "aten::mm (op 12)".
struct OpRef {
  int64_t index = -1;  // -1: no op on this side
  std::string label;
  Op::Phase phase = Op::Phase::kNode;
};

// One thing that changed: what, and its text on each side ("" where a side
// has none).
struct Change {
  std::string what;
  std::string old_value, new_value;
};

// Where two values of one tensor differ beyond tolerance.
struct ValueDifference {
  std::string dtype;
  int64_t numel = 0;
  int64_t beyond = 0;  // elements beyond tolerance
  int64_t worst_index =
      0;  // the element furthest beyond, in row-major order (complex: real/imag interleaved)
  double old_at_worst = 0, new_at_worst = 0;
  double max_abs = 0, max_rel = 0;  // over all elements
  double excess = 0;                // the worst |new - old| / (atol + rtol·|old|): how many tolerances off
  Tolerance tolerance;
};

struct Difference {
  DiffGroup group = DiffGroup::kGraph;
  // What kind of difference, within its group (docs/diff.md lists them):
  // graph: call_added, call_removed, call_changed, node_added, node_removed,
  //   node_retyped, node_runs, edges, hook_added, hook_removed, leaf_renamed;
  // guards: a recompile MissReason's kind (size, tensor, node_type, ...);
  // ops: op_added, op_removed, op_changed; numerics: values;
  // timing: node_slower, node_faster, call_slower, call_faster.
  std::string kind;
  int64_t call_a = -1, call_b = -1;  // -1: the call is only on the other side
  NodeRef node_a, node_b;
  OpRef op_a, op_b;
  int64_t tensor_a = -1, tensor_b = -1;
  std::string tensor;  // the tensor's place: "output 0", "argument 'self'", "final .grad"
  std::vector<Change> changes;
  std::optional<MissReason> reason;       // guards: in recompile's terms, with b's ids
  std::optional<ValueDifference> values;  // numerics
  double old_us = 0, new_us = 0;          // timing
  // An improvement (a faster node) is reported but never fails a check.
  bool improvement = false;
  // numerics: the earliest divergent value of its call, in a's op order.
  bool first_divergence = false;
  // Orders differences within a group, highest first: for numerics how many
  // tolerances off, for timing the ratio, for the graph the tier of change.
  double weight = 0;
};

struct DiffOptions {
  int64_t call = -1;            // -1: every call, paired by index
  double rtol = -1, atol = -1;  // < 0: by dtype (DefaultTolerance)
  bool timing = false;          // compare timings at all (they are noisy)
  double timing_threshold_percent = 10;
  // A node whose time changes by less than this is never reported: the
  // recorder's own clock is not finer than a few microseconds.
  double timing_floor_us = 20;
};

// What was compared for one pair of calls.
struct CallPairSummary {
  int64_t call_a = -1, call_b = -1;
  int64_t nodes_a = 0, nodes_b = 0, nodes_matched = 0;  // same-type pairs
  int64_t ops_a = 0, ops_b = 0, ops_matched = 0;
  int64_t values_compared = 0;
  int64_t values_not_comparable = 0;  // pairs whose shapes or dtypes differ
  bool guards_hit = false;            // b would run a's compiled graph
  bool exact_match = true;            // see CallMatch::exact
};

struct TraceDiff {
  std::vector<CallPairSummary> calls;
  std::vector<Difference> differences;  // most important first
  // What could not be compared and why, one line each ("numerics: ...").
  std::vector<std::string> notes;
  bool timing = false;  // whether timings were compared

  int64_t Count(DiffGroup group) const;
  std::vector<const Difference*> InGroup(DiffGroup group) const;  // in report order
  // Whether a difference in `fail_on` groups (not an improvement) exists.
  bool Fails(GroupSet fail_on) const;
};

// Reads the two traces to compare, each on a thread of its own: reading is
// most of a large diff's time. False and *err as ReadTraceFile says.
bool ReadTracePair(const std::string& path_a, const std::string& path_b, Trace* a, Trace* b,
                   std::string* err);

// False and *err (one line) when the options ask for a call a trace does not
// have.
bool DiffTraces(const Trace& a, const Trace& b, const DiffOptions& options, TraceDiff* diff,
                std::string* err);

}  // namespace cautograd
