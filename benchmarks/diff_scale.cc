// How `cautograd diff` scales: builds two traces of about 100,000 ops each
// (a deep MLP's backward: 11 ops and 5 nodes per layer) that differ in one
// inserted layer and one changed gradient value, writes them, and then, in a
// fresh process, times loading them, diffing them and rendering the result,
// and prints the peak resident memory. benchmarks/diff_scale.sh runs both
// steps; docs/diff.md reports the figures.
//
//   diff_scale write DIR [--ops N] [--values all|none]
//   diff_scale measure DIR
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "lib/diff/diff.h"
#include "lib/diff/render.h"
#include "lib/trace/guards.h"
#include "lib/trace/trace_io.h"
#include "tests/unit/small_trace.h"  // SmallTrace's meta; SmallTensor: a contiguous float32 tensor

namespace cautograd {
namespace {

constexpr int64_t kBatch = 4, kWidth = 8;
constexpr int64_t kOpsPerLayer = 11;

// Builds one backward call of a chain of Linear + ReLU layers, op by op, as
// the recorder would have recorded it.
class ChainBuilder {
 public:
  ChainBuilder(bool values, int64_t changed_layer) : values_(values), changed_layer_(changed_layer) {}

  // Layers are numbered from the input up; layer `inserted` runs twice (a
  // layer added), and the first output value of layer `changed_layer` is off
  // by 0.5 (a changed gradient).
  Call Build(int64_t layers, int64_t inserted) {
    call_.api = "backward";
    call_.duration_us = 1000;
    call_.start_unix_s = 1;
    Node loss = NewNode("MseLossBackward0", {{}});
    call_.roots = {loss.id};
    const int64_t root_grad = Tensor({}, kRoleRootGrad | kRoleNodeInput);
    loss.grads_in = {root_grad};
    call_.nodes.push_back(loss);
    int64_t grad = AddOp(loss.id, Op::Phase::kNode, "aten::mse_loss_backward", "",
                         {In(root_grad), In(Tensor({kBatch, kWidth}, kRoleSaved)),
                          In(Tensor({kBatch, kWidth}, kRoleSaved)), Arg::Int(1)},
                         {"grad_output", "self", "target", "reduction"}, {kBatch, kWidth});
    int64_t from = loss.id;
    for (int64_t l = layers - 1; l >= 0; --l) {
      for (int copy = 0; copy < (l == inserted ? 2 : 1); ++copy) {
        seed_ = (l * 2 + copy) * 1000;
        alter_next_output_ = l == changed_layer_;
        Layer(&from, &grad, l == 0 && copy == (l == inserted ? 1 : 0),
              "layer" + std::to_string(l) + (copy ? "_extra" : ""));
      }
    }
    for (size_t i = 0; i < call_.nodes.size(); ++i) call_.nodes[i].exec_order = int64_t(i);
    call_.guards = ComputeGuards(call_);
    return call_;
  }

 private:
  Node NewNode(const std::string& type, std::vector<std::vector<int64_t>> inputs) {
    Node n;
    n.id = int64_t(call_.nodes.size());
    n.type = type;
    n.seq = type == "torch::autograd::AccumulateGrad" ? 0 : uint64_t(1000000 - n.id);
    n.seq_is_max = type == "torch::autograd::AccumulateGrad";
    for (auto& shape : inputs) n.inputs.push_back({shape, "float32", "cpu"});
    n.executed = true;
    n.duration_us = 5;
    return n;
  }

  int64_t Tensor(std::vector<int64_t> shape, uint32_t roles) {
    const TensorInfo t =
        SmallTensor(int64_t(call_.tensors.size()), shape, int64_t(call_.storages.size()), roles);
    call_.storages.push_back({t.storage, t.numel() * 4, "cpu"});
    call_.tensors.push_back(t);
    if (values_ && (roles & (kRoleSaved | kRoleRootGrad))) AddValue(t.id, Value::When::kFirstUse, -1);
    return t.id;
  }

  void AddValue(int64_t tensor, Value::When when, int64_t op) {
    const TensorInfo& t = call_.tensors[size_t(tensor)];
    Value v;
    v.tensor = tensor;
    v.when = when;
    v.op = op;
    v.dtype = "float32";
    v.numel = t.numel();
    v.data.resize(size_t(v.numel) * 4);
    for (int64_t i = 0; i < v.numel; ++i) {
      float f = float((seed_ * 31 + i) % 97) / 97.0f;
      if (when == Value::When::kAfterOp && alter_next_output_ && i == 0) f += 0.5f;
      std::memcpy(&v.data[size_t(i) * 4], &f, 4);
    }
    call_.values.push_back(std::move(v));
    ++seed_;
    if (when == Value::When::kAfterOp) alter_next_output_ = false;
  }

  static Arg In(int64_t tensor) { return Arg::Tensor(tensor); }

  // One op with one output of `shape`; returns the output tensor.
  int64_t AddOp(int64_t node, Op::Phase phase, const std::string& name, const std::string& overload,
                std::vector<Arg> args, std::vector<std::string> names, std::vector<int64_t> shape) {
    cautograd::Op op;
    op.index = int64_t(call_.ops.size());
    op.name = name;
    op.overload = overload;
    op.node = node;
    op.phase = phase;
    op.args = std::move(args);
    op.arg_names = std::move(names);
    const int64_t out = Tensor(shape, kRoleOpOutput);
    op.outputs = {Arg::Tensor(out)};
    op.duration_us = 1;
    call_.ops.push_back(op);
    if (values_) AddValue(out, Value::When::kAfterOp, op.index);
    return out;
  }

  // One layer's backward: AddmmBackward0 -> AccumulateGrad(bias), TBackward0
  // -> AccumulateGrad(weight), and (but for the first layer) ReluBackward0
  // into the layer below.
  void Layer(int64_t* from, int64_t* grad, bool first, const std::string& name) {
    const int64_t addmm = int64_t(call_.nodes.size());
    const int64_t acc_bias = addmm + 1, t_node = addmm + 2, acc_weight = addmm + 3, relu = addmm + 4;
    call_.nodes[size_t(*from)].next.push_back({addmm, 0});
    Node n = NewNode("AddmmBackward0", {{kBatch, kWidth}});
    n.grads_in = {*grad};
    n.next = {{acc_bias, 0}, first ? Edge{} : Edge{relu, 0}, {t_node, 0}};
    call_.nodes.push_back(n);
    const int64_t weight = Tensor({kWidth, kWidth}, kRoleSaved), input = Tensor({kBatch, kWidth}, kRoleSaved);
    const int64_t wt =
        AddOp(addmm, Op::Phase::kNode, "aten::t", "", {In(weight)}, {"self"}, {kWidth, kWidth});
    const int64_t grad_in = AddOp(addmm, Op::Phase::kNode, "aten::mm", "", {In(*grad), In(wt)},
                                  {"self", "mat2"}, {kBatch, kWidth});
    const int64_t gt = AddOp(addmm, Op::Phase::kNode, "aten::t", "", {In(*grad)}, {"self"}, {kWidth, kBatch});
    const int64_t gw = AddOp(addmm, Op::Phase::kNode, "aten::mm", "", {In(gt), In(input)}, {"self", "mat2"},
                             {kWidth, kWidth});
    const int64_t gwt = AddOp(addmm, Op::Phase::kNode, "aten::t", "", {In(gw)}, {"self"}, {kWidth, kWidth});
    Arg dims;
    dims.kind = Arg::Kind::kIntList;
    dims.ints = {0};
    const int64_t sum =
        AddOp(addmm, Op::Phase::kPostNode, "aten::sum", "dim_IntList",
              {In(*grad), dims, Arg::Bool(true), Arg()}, {"self", "dim", "keepdim", "dtype"}, {1, kWidth});
    Arg size;
    size.kind = Arg::Kind::kIntList;
    size.ints = {kWidth};
    size.is_size = true;
    const int64_t bias_grad =
        AddOp(addmm, Op::Phase::kPostNode, "aten::view", "", {In(sum), size}, {"self", "size"}, {kWidth});
    Leaf(acc_bias, bias_grad, {kWidth}, name + ".bias");
    Node t = NewNode("TBackward0", {{kWidth, kWidth}});
    t.id = t_node;
    t.grads_in = {gwt};
    t.next = {{acc_weight, 0}};
    call_.nodes.push_back(t);
    const int64_t weight_grad =
        AddOp(t_node, Op::Phase::kNode, "aten::t", "", {In(gwt)}, {"self"}, {kWidth, kWidth});
    Leaf(acc_weight, weight_grad, {kWidth, kWidth}, name + ".weight");
    if (first) return;
    Node r = NewNode("ReluBackward0", {{kBatch, kWidth}});
    r.id = relu;
    r.grads_in = {grad_in};
    call_.nodes.push_back(r);
    *grad = AddOp(relu, Op::Phase::kNode, "aten::threshold_backward", "",
                  {In(grad_in), In(Tensor({kBatch, kWidth}, kRoleSaved)), Arg::Int(0)},
                  {"grad_output", "self", "threshold"}, {kBatch, kWidth});
    *from = relu;
  }

  void Leaf(int64_t id, int64_t grad, std::vector<int64_t> shape, const std::string& name) {
    Node acc = NewNode("torch::autograd::AccumulateGrad", {shape});
    acc.id = id;
    acc.grads_in = {grad};
    LeafInfo leaf;
    leaf.tensor = Tensor(shape, kRoleLeaf);
    call_.tensors[size_t(leaf.tensor)].requires_grad = true;
    call_.tensors[size_t(leaf.tensor)].name = name;
    leaf.shape = shape;
    leaf.dtype = "float32";
    leaf.name = name;
    call_.nodes.push_back(acc);
    const int64_t out = AddOp(id, Op::Phase::kNode, "aten::detach", "", {In(grad)}, {"self"}, shape);
    call_.tensors[size_t(out)].roles |= kRoleFinalGrad;
    call_.nodes.back().leaf = leaf;
    call_.nodes.back().leaf->grad_after = out;
    if (values_) AddValue(out, Value::When::kEnd, -1);
  }

  Call call_;
  bool values_;
  int64_t changed_layer_;
  // Values follow from where a tensor is in the model (layer, copy, place
  // in the layer), not from its id, so an inserted layer changes no value
  // around it.
  int64_t seed_ = 0;
  bool alter_next_output_ = false;
};

Trace MakeTrace(int64_t layers, int64_t inserted, int64_t changed_layer, bool values) {
  Trace t = SmallTrace();  // for its meta
  t.meta.command = {"diff_scale"};
  t.meta.values = values ? ValuesMode::kAll : ValuesMode::kNone;
  t.calls = {ChainBuilder(values, changed_layer).Build(layers, inserted)};
  return t;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double PeakMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024;  // ru_maxrss is in KiB on Linux
}

int Write(const std::string& dir, int64_t ops, bool values) {
  const int64_t layers = ops / kOpsPerLayer;
  std::string err;
  const Trace a = MakeTrace(layers, -1, -1, values);
  const Trace b = MakeTrace(layers, layers / 2, layers / 3, values);
  if (!WriteTraceFile(dir + "/a.cag", a, &err) || !WriteTraceFile(dir + "/b.cag", b, &err)) {
    std::fprintf(stderr, "diff_scale: %s\n", err.c_str());
    return 1;
  }
  std::printf("wrote %s/a.cag (%zu ops, %zu nodes) and b.cag (%zu ops, %zu nodes), values %s\n",
              dir.c_str(), a.calls[0].ops.size(), a.calls[0].nodes.size(), b.calls[0].ops.size(),
              b.calls[0].nodes.size(), values ? "all" : "none");
  return 0;
}

int Measure(const std::string& dir) {
  Trace a, b;
  std::string err;
  auto start = std::chrono::steady_clock::now();
  if (!ReadTracePair(dir + "/a.cag", dir + "/b.cag", &a, &b, &err)) {
    std::fprintf(stderr, "diff_scale: %s\n", err.c_str());
    return 1;
  }
  const double load = Seconds(start);
  const double after_load = PeakMiB();
  start = std::chrono::steady_clock::now();
  TraceDiff diff;
  if (!DiffTraces(a, b, DiffOptions(), &diff, &err)) {
    std::fprintf(stderr, "diff_scale: %s\n", err.c_str());
    return 1;
  }
  const double took = Seconds(start);
  start = std::chrono::steady_clock::now();
  RenderOptions render;
  const std::string text = RenderText(diff, render);
  const double rendered = Seconds(start);
  std::printf("ops: %zu and %zu; differences: graph %lld, numerics %lld, guards %lld, ops %lld\n",
              a.calls[0].ops.size(), b.calls[0].ops.size(), (long long)diff.Count(DiffGroup::kGraph),
              (long long)diff.Count(DiffGroup::kNumerics), (long long)diff.Count(DiffGroup::kGuards),
              (long long)diff.Count(DiffGroup::kOps));
  std::printf("load both (one thread each): %.2f s\ndiff: %.2f s\nrender: %.3f s (%zu bytes)\n", load, took,
              rendered, text.size());
  std::printf("peak RSS: %.0f MiB after loading, %.0f MiB in all\n", after_load, PeakMiB());
  return 0;
}

}  // namespace
}  // namespace cautograd

int main(int argc, char** argv) {
  const std::string usage =
      "usage: diff_scale write DIR [--ops N] [--values all|none] | diff_scale measure DIR\n";
  if (argc < 3) {
    std::fputs(usage.c_str(), stderr);
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  int64_t ops = 100000;
  bool values = true;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--ops")
      ops = std::stoll(argv[i + 1]);
    else if (std::string(argv[i]) == "--values")
      values = std::string(argv[i + 1]) == "all";
  }
  if (mode == "write") return cautograd::Write(dir, ops, values);
  if (mode == "measure") return cautograd::Measure(dir);
  std::fputs(usage.c_str(), stderr);
  return 2;
}
