// A call checked and compiled once, then run many times: what `cautograd
// bench` times. Preparing does everything Replay does before the first op
// (the same checks and refusals, the same inputs) and converts each op's
// arguments once into a ready stack whose tensor slots are filled per run, so
// a run costs the ops themselves plus a handful of reference-count updates.
//
// A run executes ops below autograd (no Autograd or ADInplaceOrView kernels:
// nothing is recorded for a backward of the replay) and, where every tensor
// argument is a strided CPU tensor, sends the boxed call straight to the CPU
// kernel instead of computing a dispatch key from the arguments. Nothing is
// compared with the recording while timing: run once and compare Value()s
// first (cautograd bench does, against eager backward).
//
// Implemented in replay.cc, beside the compiler it shares with Replay.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lib/replay/replay.h"
#include "lib/trace/trace.h"

namespace cautograd {

class PreparedCall {
 public:
  PreparedCall();
  ~PreparedCall();
  PreparedCall(PreparedCall&&) noexcept;
  PreparedCall& operator=(PreparedCall&&) noexcept;

  // Checks and compiles `call` (which must outlive this object) and makes
  // its inputs, as Replay would. False and *err (one line naming the op) on
  // a refusal.
  bool Prepare(const Call& call, const ReplayOptions& options, std::string* err);

  // Runs every op once, from the inputs as prepared (restored before each
  // run, untimed). *us: wall time from the first op to the last.
  bool Run(double* us, std::string* err);

  // Runs every op once, timing only each op's kernel call (its stack built
  // beforehand, the result bound afterwards, both untimed). (*op_us)[i] is
  // op i's time; their sum is the program's kernel floor.
  bool RunKernels(std::vector<double>* op_us, std::string* err);

  int64_t ops() const;
  const Op& op(int64_t i) const;  // in the order they run
  // A tensor after the last run: each leaf's final .grad and every tensor
  // with a recorded end value are kept; others are freed after their last use.
  at::Tensor Value(int64_t tensor) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cautograd
