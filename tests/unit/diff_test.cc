// The diff engine and its renderings on hand-built calls of y = (w * x).sum()
// (tests/unit/small_trace.h), each variant differing in one known way.
#include <algorithm>
#include <cstring>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lib/diff/diff.h"
#include "lib/diff/render.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

Call Small() { return SmallTrace().calls[0]; }

Trace TraceOf(std::vector<Call> calls) {
  Trace t = SmallTrace();
  t.meta.values = ValuesMode::kAll;
  t.calls = std::move(calls);
  for (size_t i = 0; i < t.calls.size(); ++i) t.calls[i].index = int64_t(i);
  return t;
}

TraceDiff Diff(const Call& a, const Call& b, DiffOptions options = DiffOptions()) {
  TraceDiff diff;
  std::string err;
  EXPECT_TRUE(DiffTraces(TraceOf({a}), TraceOf({b}), options, &diff, &err)) << err;
  return diff;
}

Node& NodeOfType(Call* call, const std::string& type) {
  for (Node& n : call->nodes)
    if (n.type == type) return n;
  ADD_FAILURE() << "no " << type;
  return call->nodes[0];
}

void RemapArg(Arg* a, const std::function<int64_t(int64_t)>& t) {
  if (a->kind == Arg::Kind::kTensor) a->tensor = t(a->tensor);
  if (a->kind == Arg::Kind::kTensorList)
    for (int64_t& id : a->ints) id = t(id);
  for (Arg& item : a->items) RemapArg(&item, t);
}

// The same call as a second recording would give it: tensor ids reversed,
// the two non-root nodes' ids swapped, sequence numbers shifted, every time
// a little different.
Call Renumbered(Call c) {
  const int64_t n = int64_t(c.tensors.size());
  auto t = [n](int64_t id) { return id < 0 ? id : n - 1 - id; };
  const std::map<int64_t, int64_t> node_id = {{0, 0}, {1, 2}, {2, 1}};
  for (TensorInfo& info : c.tensors) info.id = t(info.id);
  std::sort(c.tensors.begin(), c.tensors.end(),
            [](const TensorInfo& x, const TensorInfo& y) { return x.id < y.id; });
  for (Op& op : c.ops) {
    if (op.node >= 0) op.node = node_id.at(op.node);
    for (Arg& a : op.args) RemapArg(&a, t);
    for (Arg& a : op.outputs) RemapArg(&a, t);
    op.duration_us *= 1.04;
  }
  for (Value& v : c.values) v.tensor = t(v.tensor);
  for (Node& node : c.nodes) {
    node.id = node_id.at(node.id);
    for (Edge& e : node.next)
      if (e.node >= 0) e.node = node_id.at(e.node);
    for (int64_t& id : node.grads_in) id = t(id);
    if (node.leaf) {
      node.leaf->tensor = t(node.leaf->tensor);
      node.leaf->grad_before = t(node.leaf->grad_before);
      node.leaf->grad_after = t(node.leaf->grad_after);
    }
    if (!node.seq_is_max) node.seq += 100;
    node.duration_us = node.duration_us * 1.05 + 1;
  }
  std::sort(c.nodes.begin(), c.nodes.end(), [](const Node& x, const Node& y) { return x.id < y.id; });
  for (int64_t& r : c.roots) r = node_id.at(r);
  c.duration_us *= 1.02;
  c.guards = ComputeGuards(c);
  return c;
}

std::string FloatBytes(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(&out[0], values.data(), out.size());
  return out;
}

// Small() with the gradient w receives recorded twice: after the mul that
// makes it, and as w's final .grad.
Call WithGradValues(std::vector<float> after_op, std::vector<float> end) {
  Call c = Small();
  Value v;
  v.tensor = 3;
  v.when = Value::When::kAfterOp;
  v.op = 1;
  v.dtype = "float32";
  v.numel = 6;
  v.data = FloatBytes(after_op);
  c.values.push_back(v);
  v.when = Value::When::kEnd;
  v.op = -1;
  v.data = FloatBytes(end);
  c.values.push_back(v);
  return c;
}

const std::vector<float> kGrad = {1, 2, 3, 4, 5, 6};

TEST(Diff, IdenticalCallsHaveNoDifference) {
  const TraceDiff diff = Diff(Small(), Small());
  EXPECT_TRUE(diff.differences.empty());
  ASSERT_EQ(diff.calls.size(), 1u);
  EXPECT_EQ(diff.calls[0].nodes_matched, 3);
  EXPECT_EQ(diff.calls[0].ops_matched, 2);
  EXPECT_TRUE(diff.calls[0].guards_hit);
  EXPECT_FALSE(diff.Fails(GroupBit(DiffGroup::kGraph) | GroupBit(DiffGroup::kOps)));
}

TEST(Diff, ACallOnlyOneSideHasIsNamedByItsIndexNotItsPosition) {
  // As `--calls 4-5` leaves them: indices that are not positions.
  Trace a = TraceOf({Small(), Small()}), b = TraceOf({Small()});
  a.calls[0].index = 4;
  a.calls[1].index = 5;
  b.calls[0].index = 4;
  TraceDiff diff;
  std::string err;
  ASSERT_TRUE(DiffTraces(a, b, DiffOptions(), &diff, &err)) << err;
  auto removed = std::find_if(diff.differences.begin(), diff.differences.end(),
                              [](const Difference& d) { return d.kind == "call_removed"; });
  ASSERT_NE(removed, diff.differences.end());
  EXPECT_EQ(removed->call_a, 5);
}

TEST(Diff, RenumberedIdsSequenceNumbersAndTimingsAreNoDifference) {
  const Call a = WithGradValues(kGrad, kGrad);
  const Call b = Renumbered(a);
  ASSERT_NE(b.nodes[1].type, a.nodes[1].type);  // the ids really moved
  EXPECT_TRUE(Diff(a, b).differences.empty());
  DiffOptions timing;
  timing.timing = true;  // 5% slower and 1 us: under the threshold and the floor
  const TraceDiff diff = Diff(a, b, timing);
  EXPECT_TRUE(diff.differences.empty()) << DifferenceText(diff.differences[0]);
  EXPECT_EQ(diff.calls[0].values_compared, 3);  // the root gradient, the op output, the final .grad
}

TEST(Diff, AnInsertedNodeIsAddedAndEverythingElseStillMatches) {
  Call b = Small();
  b.tensors.push_back(SmallTensor(5, {2, 3}, 5, kRoleOpOutput | kRoleNodeInput));
  b.storages.push_back({5, 24, "cpu"});
  Node neg;
  neg.id = 3;
  neg.type = "NegBackward0";
  neg.seq = 5;
  neg.inputs = {{{2, 3}, "float32", "cpu"}};
  neg.next = {{1, 0}};
  neg.executed = true;
  neg.exec_order = 1;
  neg.grads_in = {1};
  b.nodes[0].next = {{3, 0}};
  b.nodes[1].exec_order = 2;
  b.nodes[1].grads_in = {5};
  b.nodes[2].exec_order = 3;
  b.nodes.push_back(neg);
  Op op;
  op.name = "aten::neg";
  op.node = 3;
  op.phase = Op::Phase::kNode;
  op.args = {Arg::Tensor(1)};
  op.arg_names = {"self"};
  op.outputs = {Arg::Tensor(5)};
  b.ops.insert(b.ops.begin() + 1, op);
  b.ops[2].args[0] = Arg::Tensor(5);
  for (size_t i = 0; i < b.ops.size(); ++i) b.ops[i].index = int64_t(i);

  const TraceDiff diff = Diff(Small(), b);
  const auto graph = diff.InGroup(DiffGroup::kGraph);
  ASSERT_EQ(graph.size(), 1u);
  EXPECT_EQ(graph[0]->kind, "node_added");
  EXPECT_EQ(graph[0]->node_b.type, "NegBackward0");
  EXPECT_EQ(graph[0]->node_b.node_call, 1);
  EXPECT_EQ(diff.calls[0].nodes_matched, 3);
  EXPECT_TRUE(diff.InGroup(DiffGroup::kOps).empty());  // the new node's op follows from it
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  EXPECT_EQ(guards[0]->kind, "node_type");
  EXPECT_EQ(DifferenceText(*graph[0]), "call 0: node added: NegBackward0 (NodeCall 1)");
}

TEST(Diff, ABatchSizeIsAGuardsSizeDifferenceAndOpShapes) {
  const TraceDiff diff = Diff(SmallCallWithBatch(2), SmallCallWithBatch(4));
  EXPECT_TRUE(diff.InGroup(DiffGroup::kGraph).empty());
  EXPECT_TRUE(diff.InGroup(DiffGroup::kNumerics).empty());
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  for (const Difference* d : guards) {
    EXPECT_EQ(d->kind, "size");
    ASSERT_TRUE(d->reason);
    EXPECT_EQ(d->reason->old_value, "2");
    EXPECT_EQ(d->reason->new_value, "4");
    EXPECT_EQ(d->reason->dim, 0);
  }
  // The expand's size argument, and the shapes of both ops' tensors.
  const auto ops = diff.InGroup(DiffGroup::kOps);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(DifferenceText(*ops[0]),
            "call 0: aten::expand (op 0) in SumBackward0 (NodeCall 0): size [2, 3] -> [4, 3]; output 0 "
            "float32[2, 3] -> "
            "float32[4, 3]");
  EXPECT_TRUE(diff.Fails(kDefaultFailOn));
  EXPECT_FALSE(diff.Fails(GroupBit(DiffGroup::kGraph) | GroupBit(DiffGroup::kNumerics)));
}

TEST(Diff, ADtypeIsAGuardsTensorDifference) {
  Call b = Small();
  for (TensorInfo& t : b.tensors) t.dtype = "float64";
  for (Node& n : b.nodes)
    for (InputMeta& m : n.inputs) m.dtype = "float64";
  const TraceDiff diff = Diff(Small(), b);
  EXPECT_TRUE(diff.InGroup(DiffGroup::kGraph).empty());
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  EXPECT_EQ(guards[0]->kind, "tensor");
  EXPECT_EQ(guards[0]->reason->field, "dtype");
  EXPECT_EQ(guards[0]->changes[0].old_value, "float32");
  EXPECT_EQ(guards[0]->changes[0].new_value, "float64");
  EXPECT_EQ(diff.InGroup(DiffGroup::kOps).size(), 2u);
}

TEST(Diff, HooksAddedAndRemoved) {
  Call b = Small();
  NodeOfType(&b, "MulBackward0")
      .hooks.push_back({Hook::Kind::kTensorPreHook, "python", "PyFunctionTensorPreHook"});
  NodeOfType(&b, "torch::autograd::AccumulateGrad").hooks.clear();
  const TraceDiff diff = Diff(Small(), b);
  const auto graph = diff.InGroup(DiffGroup::kGraph);
  ASSERT_EQ(graph.size(), 2u);
  EXPECT_EQ(
      DifferenceText(*graph[0]),
      "call 0: MulBackward0 (NodeCall 1): hook added: python tensor_pre_hook (PyFunctionTensorPreHook)");
  EXPECT_EQ(
      DifferenceText(*graph[1]),
      "call 0: torch::autograd::AccumulateGrad (NodeCall 2, w): hook removed: cpp tensor_pre_hook (lambda)");
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  EXPECT_EQ(guards[0]->kind, "hooks");
}

TEST(Diff, AChangedGradientIsNumericsWorstFirstWithTheFirstDivergence) {
  std::vector<float> op_value = kGrad, end_value = kGrad;
  op_value[4] += 0.5f;
  end_value[1] += 3.0f;
  const TraceDiff diff = Diff(WithGradValues(kGrad, kGrad), WithGradValues(op_value, end_value));
  EXPECT_EQ(diff.differences.size(), 2u);
  const auto numerics = diff.InGroup(DiffGroup::kNumerics);
  ASSERT_EQ(numerics.size(), 2u);
  // Worst first: the final .grad is further off...
  EXPECT_EQ(numerics[0]->tensor, "final .grad");
  EXPECT_EQ(numerics[0]->values->worst_index, 1);
  EXPECT_FALSE(numerics[0]->first_divergence);
  // ... but the op's output diverged first.
  EXPECT_EQ(numerics[1]->tensor, "output 0");
  EXPECT_EQ(numerics[1]->op_a.label, "aten::mul.Tensor");
  EXPECT_TRUE(numerics[1]->first_divergence);
  EXPECT_EQ(numerics[1]->values->beyond, 1);
  EXPECT_DOUBLE_EQ(numerics[1]->values->old_at_worst, 5);
  EXPECT_DOUBLE_EQ(numerics[1]->values->new_at_worst, 5.5);
  EXPECT_EQ(DifferenceText(*numerics[1]),
            "call 0: output 0 of aten::mul.Tensor (op 1) in MulBackward0 (NodeCall 1): 1 of 6 float32 "
            "elements beyond "
            "tolerance; worst [4] 5 -> 5.5 (max abs 0.5, max rel 0.1; rtol 1.3e-06, atol 1e-05)");
  EXPECT_TRUE(diff.Fails(GroupBit(DiffGroup::kNumerics)));
}

TEST(Diff, ValuesWithinToleranceAreNoDifferenceAndToleranceCanBeWidened) {
  std::vector<float> close = kGrad;
  close[0] += 1e-6f;
  EXPECT_TRUE(Diff(WithGradValues(kGrad, kGrad), WithGradValues(close, close)).differences.empty());
  std::vector<float> off = kGrad;
  off[0] += 0.01f;
  EXPECT_EQ(Diff(WithGradValues(kGrad, kGrad), WithGradValues(off, off)).differences.size(), 2u);
  DiffOptions loose;
  loose.atol = 0.1;
  EXPECT_TRUE(Diff(WithGradValues(kGrad, kGrad), WithGradValues(off, off), loose).differences.empty());
}

TEST(Diff, ASlowerNodeIsTimingOnlyWhenTimingIsOn) {
  Call b = Small();
  NodeOfType(&b, "MulBackward0").duration_us = 500;
  EXPECT_TRUE(Diff(Small(), b).differences.empty());
  DiffOptions timing;
  timing.timing = true;
  const TraceDiff diff = Diff(Small(), b, timing);
  ASSERT_EQ(diff.differences.size(), 1u);
  const Difference& d = diff.differences[0];
  EXPECT_EQ(d.kind, "node_slower");
  EXPECT_EQ(d.node_a.type, "MulBackward0");
  EXPECT_EQ(DifferenceText(d), "call 0: MulBackward0 (NodeCall 1): 0 us -> 500 us (new)");
  EXPECT_TRUE(diff.Fails(GroupBit(DiffGroup::kTiming)));
  EXPECT_FALSE(diff.Fails(kDefaultFailOn));
}

TEST(Diff, AFasterNodeIsReportedButNeverFails) {
  Call a = Small(), b = Small();
  NodeOfType(&a, "MulBackward0").duration_us = 300;
  NodeOfType(&b, "MulBackward0").duration_us = 100;
  DiffOptions timing;
  timing.timing = true;
  const TraceDiff diff = Diff(a, b, timing);
  ASSERT_EQ(diff.differences.size(), 1u);
  EXPECT_EQ(diff.differences[0].kind, "node_faster");
  EXPECT_TRUE(diff.differences[0].improvement);
  EXPECT_FALSE(diff.Fails(GroupBit(DiffGroup::kTiming)));
}

TEST(Diff, ARetypedNodeAndRewiredEdges) {
  Call b = Small();
  NodeOfType(&b, "MulBackward0").type = "DivBackward0";
  const TraceDiff retyped = Diff(Small(), b);
  const auto graph = retyped.InGroup(DiffGroup::kGraph);
  ASSERT_EQ(graph.size(), 1u);
  EXPECT_EQ(DifferenceText(*graph[0]), "call 0: MulBackward0 (NodeCall 1) is now DivBackward0 (NodeCall 1)");

  Call c = Small();
  NodeOfType(&c, "MulBackward0").next[0].input = 1;
  const TraceDiff rewired = Diff(Small(), c);
  const auto edges = rewired.InGroup(DiffGroup::kGraph);
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_EQ(DifferenceText(*edges[0]),
            "call 0: MulBackward0 (NodeCall 1): next edges changed: output 0 torch::autograd::AccumulateGrad "
            "(NodeCall 2) input 0 -> torch::autograd::AccumulateGrad (NodeCall 2) input 1");
}

TEST(Diff, CallsOnlyOneTraceHasAreGraphDifferences) {
  TraceDiff diff;
  std::string err;
  ASSERT_TRUE(DiffTraces(TraceOf({Small()}), TraceOf({Small(), Small()}), DiffOptions(), &diff, &err));
  ASSERT_EQ(diff.differences.size(), 1u);
  EXPECT_EQ(diff.differences[0].kind, "call_added");
  EXPECT_EQ(DifferenceText(diff.differences[0]), "call 1: only in the second trace");

  DiffOptions one;
  one.call = 1;
  EXPECT_FALSE(DiffTraces(TraceOf({Small()}), TraceOf({Small(), Small()}), one, &diff, &err));
  EXPECT_EQ(err, "no call 1 in the first trace: it has 1 (numbered from 0)");
  one.call = 0;
  ASSERT_TRUE(DiffTraces(TraceOf({Small()}), TraceOf({Small(), Small()}), one, &diff, &err));
  EXPECT_TRUE(diff.differences.empty());
}

TEST(DiffGroups, ParseNamesAllAndNone) {
  GroupSet set = 0;
  std::string bad;
  ASSERT_TRUE(ParseGroupSet("graph,guards,numerics", &set, &bad));
  EXPECT_EQ(set, kDefaultFailOn);
  ASSERT_TRUE(ParseGroupSet("all", &set, &bad));
  EXPECT_EQ(GroupSetNames(set), (std::vector<std::string>{"graph", "numerics", "guards", "ops", "timing"}));
  ASSERT_TRUE(ParseGroupSet("none", &set, &bad));
  EXPECT_EQ(set, 0u);
  EXPECT_FALSE(ParseGroupSet("graph,speed", &set, &bad));
  EXPECT_EQ(bad, "speed");
}

TEST(DiffRender, VerdictSaysWhatFailsAndWhatOnlyDiffers) {
  const TraceDiff same = Diff(Small(), Small());
  EXPECT_EQ(VerdictText(same, kDefaultFailOn), "SAME: no differences in graph, numerics, guards, ops");
  const TraceDiff batch = Diff(SmallCallWithBatch(2), SmallCallWithBatch(4));
  const std::string guards = std::to_string(batch.Count(DiffGroup::kGuards));
  EXPECT_EQ(VerdictText(batch, kDefaultFailOn), "FAIL: differences in guards (" + guards +
                                                    "); also differences in ops (2), not in --fail-on "
                                                    "graph,numerics,guards");
  EXPECT_EQ(VerdictText(batch, 0),
            "PASS: differences in guards (" + guards + "), ops (2), not in --fail-on none");
}

TEST(DiffRender, ColourOnlyWhenAskedAndFoldingPastTheListed) {
  const TraceDiff batch = Diff(SmallCallWithBatch(2), SmallCallWithBatch(4));
  RenderOptions o;
  o.a_name = "a.json";
  o.b_name = "b.json";
  o.listed_per_group = 1;
  const std::string plain = RenderText(batch, o);
  EXPECT_EQ(plain.find('\033'), std::string::npos);
  EXPECT_NE(plain.find("  ... 1 more (--format json lists every one)"), std::string::npos);
  o.color = true;
  EXPECT_NE(RenderText(batch, o).find("\033[1;31mFAIL"), std::string::npos);
  const std::string md = RenderMarkdown(batch, o);
  EXPECT_EQ(md.rfind("### cautograd diff: FAIL: guards changed", 0), 0u);
  // A group that does not fail is folded whole.
  EXPECT_NE(
      md.find(
          "**ops**: ops of matched nodes changed (not failing)\n\n<details><summary>2 differences</summary>"),
      std::string::npos);
  EXPECT_EQ(md.find('\033'), std::string::npos);
}

TEST(DiffRender, JsonHoldsEveryDifferenceWithItsGroupAndCounts) {
  const TraceDiff batch = Diff(SmallCallWithBatch(2), SmallCallWithBatch(4));
  RenderOptions o;
  o.listed_per_group = 1;  // JSON ignores it
  const nlohmann::json j = nlohmann::json::parse(RenderJson(batch, o));
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["failing"], nlohmann::json::array({"guards"}));
  EXPECT_EQ(j["counts"]["ops"], 2);
  EXPECT_EQ(j["differences"].size(), batch.differences.size());
  EXPECT_EQ(j["differences"][0]["group"], "guards");
  EXPECT_EQ(j["differences"][0]["reason"]["kind"], "size");
  EXPECT_FALSE(j.contains("timing"));
  EXPECT_EQ(j["timing_compared"], false);
}

}  // namespace
}  // namespace cautograd
