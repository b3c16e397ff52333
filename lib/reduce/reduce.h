// `cautograd reduce`: shrinks a trace to the few calls and ops on which a
// condition still holds (replay diverges, an op crashes, numerics differ
// from another trace, a command exits 0), by delta debugging over calls and
// then over each call's ops. Every candidate is cut soundly (CallSlicer):
// what a kept op reads and no kept op makes comes from a value the trace
// recorded at that point, so each candidate replays on its own. The
// condition itself is the caller's (tools/cmd_reduce.cc): this part needs no
// libtorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

// A trace cut down, and where each of its parts came from in the original.
struct Candidate {
  Trace trace;                              // calls renumbered from 0
  std::vector<int64_t> calls;               // per call: its position in the original
  std::vector<std::vector<int64_t>> ops;    // per call: each op's original index
  std::vector<std::vector<int64_t>> tensors;  // per call: each tensor's original id
  int64_t num_ops() const;
};

// Whether the condition holds on a candidate.
using Condition = std::function<bool(const Candidate&)>;

struct ReduceOptions {
  // Where the condition was seen on the original (the op that diverged or
  // crashed): only that call is kept, that op is in every candidate, and
  // ops after it are dropped first. -1: unknown, every call and op is tried.
  int64_t target_call = -1;  // a position in trace.calls
  int64_t target_op = -1;    // an op index in that call; -1 with a call: a final value
  // Called after each candidate with (candidates tried, ops in the smallest so far).
  std::function<void(int64_t, int64_t)> progress;
};

struct ReduceStats {
  int64_t tried = 0;    // candidates the condition was run on
  int64_t unsound = 0;  // candidates no sound cut could be made of (not run)
  int64_t ops_before = 0;
};

// The trace as one candidate: every call, every op.
bool WholeTrace(const Trace& trace, Candidate* whole, std::string* err);

// Reduces `trace`, on which `holds` must hold (checked by the caller).
// False and *err only when not even the starting point can be cut.
bool Reduce(const Trace& trace, const ReduceOptions& options, const Condition& holds, Candidate* result,
            ReduceStats* stats, std::string* err);

// For `--until differs-from OTHER`: replaces the values `trace` recorded for
// its ops' outputs and its final gradients by those `other` recorded for
// the same ops (two recordings of one program: the same calls, the same op
// sequence), so that replaying `trace` checks its ops, run on its own
// recorded inputs, against the other recording. *replaced: how many values
// came from `other`. False and *err (one line) when the traces are not of
// the same program.
bool ExpectFrom(const Trace& other, Trace* trace, int64_t* replaced, std::string* err);

}  // namespace cautograd
