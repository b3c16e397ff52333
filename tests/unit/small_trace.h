// A hand-built trace of y = (w * x).sum() backward, for tests that need a
// valid call without libtorch: SumBackward0 -> MulBackward0 -> AccumulateGrad(w).
#pragma once

#include "lib/trace/guards.h"
#include "lib/trace/trace.h"

namespace cautograd {

inline TensorInfo SmallTensor(int64_t id, std::vector<int64_t> shape, int64_t storage, uint32_t roles,
                              std::string dtype = "float32") {
  TensorInfo t;
  t.id = id;
  t.shape = shape;
  t.strides.assign(shape.size(), 1);
  for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d)
    t.strides[size_t(d)] = t.strides[size_t(d) + 1] * shape[size_t(d) + 1];
  t.dtype = std::move(dtype);
  t.device = "cpu";
  t.storage = storage;
  t.roles = roles;
  return t;
}

inline Trace SmallTrace() {
  Trace trace;
  trace.meta.tool_version = kToolVersion;
  trace.meta.libtorch_version = "1.13.0";
  trace.meta.command = {"test"};
  trace.meta.time = "2026-01-01T00:00:00Z";
  trace.meta.host = "host";
  trace.meta.seed = 7;
  Call call;
  call.api = "backward";
  call.duration_us = 10;
  call.start_unix_s = 1;
  for (int64_t s = 0; s < 5; ++s) call.storages.push_back({s, s == 0 ? 4 : 24, "cpu"});
  call.tensors.push_back(SmallTensor(0, {}, 0, kRoleRootGrad | kRoleNodeInput));      // d loss
  call.tensors.push_back(SmallTensor(1, {2, 3}, 1, kRoleOpOutput | kRoleNodeInput));  // expanded grad
  call.tensors.push_back(SmallTensor(2, {2, 3}, 2, kRoleSaved));                      // x
  call.tensors.push_back(SmallTensor(3, {2, 3}, 3, kRoleOpOutput | kRoleNodeInput | kRoleFinalGrad));
  call.tensors.push_back(SmallTensor(4, {2, 3}, 4, kRoleLeaf));  // w
  call.tensors[4].requires_grad = true;
  call.tensors[4].name = "w";

  Node sum;
  sum.id = 0;
  sum.type = "SumBackward0";
  sum.seq = 1;
  sum.topo = 2;
  sum.inputs = {{{}, "float32", "cpu"}};
  sum.next = {{1, 0}};
  sum.executed = true;
  sum.exec_order = 0;
  sum.grads_in = {0};
  Node mul;
  mul.id = 1;
  mul.type = "MulBackward0";
  mul.seq = 0;
  mul.topo = 1;
  mul.inputs = {{{2, 3}, "float32", "cpu"}};
  mul.next = {{2, 0}, {}};
  mul.executed = true;
  mul.exec_order = 1;
  mul.grads_in = {1};
  Node acc;
  acc.id = 2;
  acc.type = "torch::autograd::AccumulateGrad";
  acc.seq = UINT64_MAX;
  acc.seq_is_max = true;
  acc.inputs = {{{2, 3}, "float32", "cpu"}};
  acc.executed = true;
  acc.exec_order = 2;
  acc.grads_in = {3};
  LeafInfo leaf;
  leaf.tensor = 4;
  leaf.shape = {2, 3};
  leaf.dtype = "float32";
  leaf.grad_after = 3;
  leaf.name = "w";
  acc.leaf = leaf;
  acc.hooks.push_back({Hook::Kind::kTensorPreHook, "cpp", "lambda"});
  call.nodes = {sum, mul, acc};
  call.roots = {0};

  Op expand;
  expand.index = 0;
  expand.name = "aten::expand";
  expand.node = 0;
  expand.phase = Op::Phase::kNode;
  expand.args = {Arg::Tensor(0), Arg(), Arg::Bool(false)};
  expand.args[1].kind = Arg::Kind::kIntList;
  expand.args[1].ints = {2, 3};
  expand.args[1].is_size = true;
  expand.arg_names = {"self", "size", "implicit"};
  expand.outputs = {Arg::Tensor(1)};
  Op mulop;
  mulop.index = 1;
  mulop.name = "aten::mul";
  mulop.overload = "Tensor";
  mulop.node = 1;
  mulop.phase = Op::Phase::kNode;
  mulop.args = {Arg::Tensor(1), Arg::Tensor(2)};
  mulop.arg_names = {"self", "other"};
  mulop.outputs = {Arg::Tensor(3)};
  call.ops = {expand, mulop};

  Value v;
  v.tensor = 0;
  v.dtype = "float32";
  v.numel = 1;
  v.data = std::string("\x00\x00\x80\x3f", 4);  // 1.0f
  call.values.push_back(v);
  call.guards = ComputeGuards(call);
  trace.calls.push_back(std::move(call));
  return trace;
}

// SmallTrace's call with a batch of `batch` rows: every 2-D tensor's first
// dimension, the nodes' input shapes and expand's size argument.
inline Call SmallCallWithBatch(int64_t batch) {
  Call call = SmallTrace().calls[0];
  for (TensorInfo& t : call.tensors) {
    if (t.shape.size() != 2) continue;
    t.shape[0] = batch;
  }
  for (Node& n : call.nodes)
    for (InputMeta& m : n.inputs)
      if (m.shape.size() == 2) m.shape[0] = batch;
  if (call.nodes[2].leaf) call.nodes[2].leaf->shape[0] = batch;
  call.ops[0].args[1].ints[0] = batch;
  return call;
}

}  // namespace cautograd
