// Which node, op and tensor of one backward call is which in another, found
// by structure alone: node ids, sequence numbers, tensor ids and timings may
// all differ between two recordings of the same program.
//
// Nodes: the executed nodes, in execution order, are aligned as a line diff
// aligns lines (lib/diff/align.h) on a strict key (type, parameter name and
// shape, the parameters it feeds, input shapes and dtypes, which outputs lead
// nowhere); what is left between two aligned nodes is aligned
// again on the type alone (a batch size changes every shape but no type), and
// what is still left pairs up by place as "retyped" where both sides have as
// many nodes. Nodes that did not run (grad() runs only what it needs) pair
// through the edges of paired nodes.
// Ops: within each pair of same-type nodes, per phase (pre-hook, node, after
// the node), aligned on operator name and overload; the engine's own ops,
// outside any node, as one sequence.
// Tensors pair through the ops and nodes that use them (see diff.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

struct CallMatch {
  // Per node id: the other call's node id, -1 for none. Retyped pairs are in
  // these maps too, so edges to them compare by place.
  std::vector<int64_t> node_a_to_b, node_b_to_a;
  std::vector<bool> retyped_a;  // per node id of a: paired by place, other type
  // Per op index: the other call's op index, -1 for none.
  std::vector<int64_t> op_a_to_b, op_b_to_a;
  // False where the graphs had so little in common that nodes were paired
  // greedily rather than by the longest common subsequence.
  bool exact = true;

  bool Same(int64_t node_a) const { return node_a_to_b[size_t(node_a)] >= 0 && !retyped_a[size_t(node_a)]; }
};

CallMatch MatchCalls(const Call& a, const Call& b);

}  // namespace cautograd
