// Compiled autograd's key for a backward graph, computed the way compiled
// autograd computes it (PyTorch 2.4+; torch/csrc/dynamo/compiled_autograd.h
// ships with the headers and is inline). Its cache walk is made again, from
// the same starting point, over the same graph: a GraphRoot, NodeCalls
// handed out in lookup order, a last-in-first-out worklist that takes a
// node once all its dependencies are visited, and per node the key bytes
// that node's own compiled_args writes. Nothing is run and no cache is
// touched: this reads the graph, as compiled autograd's first pass does
// (it unpacks saved variables, which checks their versions, and asks
// Python Functions and hooks for their keys: the caller holds the GIL
// where Python is running).
//
// Before 2.4 there is no such walk: CaWalkAvailable() is false and the
// walk returns a key that is not present().
#pragma once

#include <functional>
#include <unordered_map>
#include <vector>

#include <torch/csrc/autograd/graph_task.h>

#include "lib/torch_compat/torch_compat.h"
#include "lib/trace/trace.h"

namespace cautograd {
namespace compat {

struct CaWalkStart {
  // Compiled autograd's GraphRoot; null: one is made over root_edges with
  // grads, as Engine::execute makes it when compiled autograd is on.
  NodePtr graph_root;
  ta::edge_list root_edges;
  std::vector<at::Tensor> grads;
  // The graph task's exec_info_ (autograd.grad, backward(inputs=)); null or
  // empty: every node runs.
  const std::unordered_map<ta::Node*, ta::GraphTask::ExecInfo>* exec_info = nullptr;
  // autograd.grad's inputs, in order. Where they are not at hand (an eager
  // call seen from inside), outputs_from_exec_info reads them back from
  // exec_info's captures.
  ta::edge_list outputs;
  bool outputs_from_exec_info = false;
  CompiledAutogradKey::Ran ran = CompiledAutogradKey::Ran::kEager;
};

bool CaWalkAvailable();

// The node the engine is running on this thread (inside a node's
// RecordFunction callback: the node about to run); null where libtorch
// does not say (before 2.4 here).
ta::Node* CurrentNode();

// `node_id` gives the call's id for a libtorch node (-1: not one of them).
// A node compiled autograd cannot key (it would raise) ends the walk: the
// key holds the nodes before it and the message.
CompiledAutogradKey WalkCompiledAutograd(const CaWalkStart& start,
                                         const std::function<int64_t(const ta::Node*)>& node_id);

}  // namespace compat
}  // namespace cautograd
