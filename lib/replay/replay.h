// Replay: re-executes a trace's recorded ops through the dispatcher, by
// operator name and overload, with no autograd engine and no model code,
// and checks the results against the values the trace holds.
//
// A trace is untrusted input. Before anything runs, each call is compiled
// into a checked program: every operator must exist and be allowed, every
// argument must fit its schema, every tensor must exist before it is used,
// and the memory the program needs must fit the budget. Any failure there is
// a refusal (one line naming the op), not a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/trace/tolerance.h"
#include "lib/trace/trace.h"

namespace cautograd {

struct ReplayOptions {
  int64_t call = -1;  // -1: every call, in order
  bool check = false;
  double rtol = -1;  // < 0: by dtype (see DefaultTolerance in lib/trace/tolerance.h)
  double atol = -1;
  uint64_t seed = 0;                          // for inputs the trace holds no values for
  std::vector<std::string> allow_namespaces;  // beyond aten and prim
  int64_t max_memory = int64_t(4) << 30;      // bytes
  // The libtorch the trace was recorded with (its meta.libtorch_version;
  // Replay fills it). When it is not this backend's, an op whose argument
  // names differ from this libtorch's schema is refused, naming both.
  std::string recorded_with;
  // Called now and then with (ops done, ops in all selected calls).
  std::function<void(int64_t, int64_t)> progress;
  // Called before each op runs, with (call index, op index).
  std::function<void(int64_t, int64_t)> before_op;
  // Called when an op itself fails (libtorch raised, or replay refused its
  // arguments as ones the kernel would crash on), before Replay returns false.
  std::function<void(int64_t, int64_t)> op_failed;
};

// Where a replayed value first differed from the recorded one.
struct Divergence {
  int64_t op = -1;  // -1: a final gradient, after the last op
  std::string op_name;
  int64_t node = -1;
  std::string node_type;
  int64_t tensor = -1;
  std::string what;  // "output 0 of the op", "final .grad of leaf 'fc1.weight'"
  double max_abs = 0, max_rel = 0;
  Tolerance tolerance;
  std::string detail;  // for shape or dtype divergences
};

struct CallReplay {
  int64_t index = 0;
  int64_t ops = 0;
  int64_t inputs = 0;              // tensors the program takes from outside
  int64_t inputs_from_values = 0;  // ... of which the trace holds values
  int64_t inputs_synthesized = 0;
  int64_t inputs_aliased = 0;  // ... of which are memory an earlier op wrote
  int64_t peak_bytes = 0;      // estimated before running
  double run_us = 0;
  int64_t compared = 0;  // values checked
  double worst_abs = 0, worst_rel = 0;
  bool diverged = false;
  Divergence divergence;
};

struct ReplayReport {
  std::vector<CallReplay> calls;
  bool checked = false;
  bool diverged() const;
  int64_t compared() const;
};

// Replays the selected calls. False and *err (one line, naming the call and
// op) when the trace cannot or may not be replayed; a replay that runs but
// differs from the recording returns true with a divergence in the report.
bool Replay(const Trace& trace, const ReplayOptions& options, ReplayReport* report, std::string* err);

// Everything Replay checks before any kernel runs (the programs it compiles
// from the selected calls), and nothing more: the fuzz target for replay
// (tests/fuzz) and a dry run. False and *err as Replay refuses.
bool CheckReplayable(const Trace& trace, const ReplayOptions& options, std::string* err);

}  // namespace cautograd
