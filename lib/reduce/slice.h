// Cutting a call down to some of its ops so that what is left still
// replays on its own: what `cautograd reduce` tries, candidate after
// candidate. No libtorch: it works on the trace's metadata and values.
//
// An op that is dropped no longer makes what the ops after it read, so
// every tensor a kept op reads that no kept op made becomes an input of the
// cut call, and its value must come from the trace: a value recorded for
// that tensor at exactly that point (after the op that last wrote its
// memory, or at the call's start). Points are counted per storage, as
// versions: a storage's version before op u is how many ops before u wrote
// it (made it, or wrote it in place). Memory is treated as a whole storage,
// so two views of one storage are never given values from different
// versions, which would clobber each other when replay writes its inputs.
//
// A cut is sound when, for every storage the kept ops touch,
//   - every op that writes it between the first kept op touching it and the
//     last is kept (so its versions advance in the cut as they did), and
//   - every tensor that becomes an input has a recorded value at the
//     version its first kept reader sees, or is an input of the whole call
//     that the trace never held values for (replay synthesizes it, as it
//     would for the whole call).
// Close() adds the ops a set needs to be sound; Cut() builds the call.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

class CallSlicer {
 public:
  // `call` must outlive the slicer.
  explicit CallSlicer(const Call& call);

  // The smallest sound superset of `ops` (op indices; the result sorted)
  // that this method finds by adding, for each unsound point, the op that
  // made or last wrote the memory involved. False and *why when no superset
  // is sound (an integer input the trace holds no value for).
  bool Close(std::vector<int64_t>* ops, std::string* why) const;

  // The call cut to `ops`, which must be sound (Close). Ops, tensors,
  // storages and nodes are renumbered densely, in their original order;
  // `op_origin` and `tensor_origin` (if given) get each new op's original
  // index and each new tensor's original id. Guards and compiled
  // autograd's key describe the whole graph, so they are dropped.
  bool Cut(const std::vector<int64_t>& ops, Call* out, std::vector<int64_t>* op_origin,
           std::vector<int64_t>* tensor_origin, std::string* why) const;

  const Call& call() const { return call_; }

 private:
  // Memory a tensor lives in: its storage, or for a tensor without one
  // (sparse, undefined), a key of its own.
  int64_t Key(int64_t tensor) const;
  // How many ops before op `u` wrote memory `key`.
  int64_t VersionBefore(int64_t key, int64_t u) const;
  // A value of `tensor` recorded when its memory was at `version`.
  const Value* ValueAt(int64_t tensor, int64_t version) const;

  // One unsound point of `kept` (sorted), and the op that fixes it (-1: none
  // can). False when the set is sound.
  bool FindProblem(const std::vector<int64_t>& kept, std::vector<int64_t>* add, std::string* why) const;
  // The inputs a sound cut takes (tensor -> the value it starts from, null:
  // synthesized), the end values it can check.
  void Inputs(const std::vector<int64_t>& kept, std::map<int64_t, const Value*>* inputs) const;

  const Call& call_;
  std::vector<std::vector<int64_t>> reads_;        // per op: tensors read
  std::vector<std::vector<int64_t>> outputs_;      // per op: tensors output
  std::map<int64_t, std::vector<int64_t>> writes_;  // memory key -> ops that write it, ascending
  std::vector<int64_t> maker_;                     // per tensor: the first op that outputs it without reading it; -1
  std::map<int64_t, std::vector<std::pair<int64_t, const Value*>>> values_;  // tensor -> (version, value)
  std::vector<const Value*> end_values_;
  std::vector<const Value*> after_values_;
};

}  // namespace cautograd
