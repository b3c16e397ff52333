// The cache simulation and compiled programs on hand-built calls of
// y = (w * x).sum(): SumBackward0 -> MulBackward0 -> AccumulateGrad(w).
#include <set>

#include <gtest/gtest.h>

#include "lib/recompile/cache_sim.h"
#include "lib/recompile/compiled_program.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

Call Small() { return SmallTrace().calls[0]; }

Call WithBatch(int64_t batch) { return SmallCallWithBatch(batch); }

const Node& NodeOfType(const Call& call, const std::string& type) {
  for (const Node& n : call.nodes)
    if (n.type == type) return n;
  ADD_FAILURE() << "no " << type;
  return call.nodes[0];
}

// Runs the calls through one cache. The calls live in *store.
CacheSimulation Simulate(std::vector<Call>* store, DynamicMode mode,
                         std::vector<CacheCall>* calls = nullptr) {
  std::vector<CacheCall> local;
  for (size_t i = 0; i < store->size(); ++i) {
    (*store)[i].index = int64_t(i);
    local.push_back({"t.json", &(*store)[i]});
  }
  if (calls) *calls = local;
  return SimulateCache(local, mode);
}

std::vector<bool> Hits(const CacheSimulation& sim) {
  std::vector<bool> hits;
  for (const CacheCallResult& c : sim.calls) hits.push_back(c.hit);
  return hits;
}

// sizes[] indexes whose values differ between two calls of one graph.
std::set<int64_t> ChangedSizes(const Call& a, const Call& b) {
  Guards ga = ComputeGuards(a), gb = ComputeGuards(b);
  std::set<int64_t> changed;
  for (size_t j = 0; j < ga.sizes.size() && j < gb.sizes.size(); ++j)
    if (ga.sizes[j].value != gb.sizes[j].value) changed.insert(int64_t(j));
  return changed;
}

// Why `second` misses when it runs after Small(): exactly one reason.
MissReason WhySecondMisses(const Call& second) {
  std::vector<Call> calls = {Small(), second};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  EXPECT_FALSE(sim.calls[1].hit);
  EXPECT_EQ(sim.calls[1].reasons.size(), 1u);
  return sim.calls[1].reasons.empty() ? MissReason() : sim.calls[1].reasons[0];
}

TEST(DynamicMode, ParsesItsNames) {
  for (DynamicMode m : {DynamicMode::kAuto, DynamicMode::kStatic, DynamicMode::kAll}) {
    DynamicMode parsed = DynamicMode::kAuto;
    EXPECT_TRUE(ParseDynamicMode(DynamicModeName(m), &parsed));
    EXPECT_EQ(parsed, m);
  }
  DynamicMode unused;
  EXPECT_FALSE(ParseDynamicMode("sometimes", &unused));
}

TEST(CacheSim, FirstCallCompilesThenTheSameGraphHits) {
  std::vector<Call> calls = {Small(), Small(), Small()};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, true, true}));
  ASSERT_EQ(sim.calls[0].reasons.size(), 1u);
  EXPECT_EQ(sim.calls[0].reasons[0].kind, MissReason::Kind::kCacheEmpty);
  EXPECT_EQ(sim.calls[0].log,
            std::vector<std::string>{"Cache miss due to new autograd node: SumBackward0 (NodeCall 0)"});
  EXPECT_EQ(sim.compiles(), 1);
  EXPECT_EQ(sim.recompiles(), 0);
  EXPECT_DOUBLE_EQ(sim.hit_rate(), 2.0 / 3.0);
  ASSERT_EQ(sim.entries.size(), 1u);
  EXPECT_EQ(sim.entries[0].calls, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(sim.entries[0].dynamic_sizes(), 0);
}

TEST(CacheSim, BatchChangeRecompilesOnceThenHits) {
  std::vector<Call> calls = {WithBatch(2), WithBatch(5), WithBatch(2), WithBatch(5), WithBatch(7)};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(sim.recompiles(), 1);
  ASSERT_EQ(sim.entries.size(), 1u);
  EXPECT_EQ(sim.entries[0].compiles, 2);

  // Every size that changed is a reason of its own, and only those.
  const CacheCallResult& miss = sim.calls[1];
  std::set<int64_t> reported;
  for (const MissReason& r : miss.reasons) {
    EXPECT_EQ(r.kind, MissReason::Kind::kSize);
    EXPECT_TRUE(r.now_dynamic);
    EXPECT_EQ(r.old_value, "2");
    EXPECT_EQ(r.new_value, "5");
    reported.insert(r.size_index);
  }
  EXPECT_EQ(reported, ChangedSizes(calls[0], calls[1]));

  // The expand in SumBackward0 names its op, argument and element; x's
  // size names the tensor, its role and dimension.
  bool saw_arg = false, saw_saved = false;
  for (const MissReason& r : miss.reasons) {
    if (r.op >= 0) {
      saw_arg = true;
      EXPECT_EQ(r.node_type, "SumBackward0");
      EXPECT_EQ(r.node_call, 0);
      EXPECT_EQ(r.op_name, "aten::expand");
      EXPECT_EQ(r.arg, "size");
      EXPECT_EQ(r.dim, 0);
    }
    if (r.role == "saved") {
      saw_saved = true;
      EXPECT_EQ(r.node_type, "MulBackward0");
      EXPECT_EQ(r.node_call, 1);
      EXPECT_EQ(r.tensor, 2);
      EXPECT_EQ(r.dim, 0);
      EXPECT_EQ(r.log, "Cache miss due to changed shapes: marking size idx " +
                           std::to_string(r.size_index_in_node) + " of MulBackward0 (NodeCall 1) as dynamic");
    }
  }
  EXPECT_TRUE(saw_arg);
  EXPECT_TRUE(saw_saved);
  ASSERT_FALSE(miss.log.empty());
  EXPECT_EQ(
      miss.log[0].rfind("Cache miss due to " + std::to_string(miss.reasons.size()) +
                            " changed tensor shapes (total of " + std::to_string(miss.sizes) + "): sizes[",
                        0),
      0u);

  // What the summary lists: the dynamic sizes and every value they took.
  const CacheEntry& e = sim.entries[0];
  EXPECT_EQ(e.dynamic_sizes(), int64_t(reported.size()));
  for (const EntrySize& s : e.sizes) {
    EXPECT_EQ(s.dynamic, reported.count(s.input.index) == 1);
    if (s.dynamic) {
      EXPECT_EQ(s.seen, (std::vector<int64_t>{2, 5, 7}));
      EXPECT_EQ(s.dynamic_since, 1);
    }
  }
}

TEST(CacheSim, StaticRecompilesOnEveryNewSize) {
  std::vector<Call> calls = {WithBatch(2), WithBatch(5), WithBatch(2), WithBatch(7)};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kStatic);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(sim.entries.size(), 3u);
  EXPECT_EQ(sim.calls[2].entry, sim.calls[0].entry);
  for (const MissReason& r : sim.calls[3].reasons) {
    EXPECT_EQ(r.kind, MissReason::Kind::kSize);
    EXPECT_FALSE(r.now_dynamic);
  }
  for (const CacheEntry& e : sim.entries) EXPECT_EQ(e.dynamic_sizes(), 0);
}

TEST(CacheSim, AllMakesEverySizeDynamicFromTheStart) {
  std::vector<Call> calls = {WithBatch(2), WithBatch(5), WithBatch(7)};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAll);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(sim.entries[0].dynamic_sizes(), int64_t(sim.entries[0].sizes.size()));
}

TEST(CacheSim, GradDefinedAfterTheFirstStepNamesTheAccumulateGrad) {
  Call second = Small();
  // .grad of w exists before the second call, as after zeroing in place.
  TensorInfo old_grad = SmallTensor(5, {2, 3}, 4, kRoleOldGrad);
  second.tensors.push_back(old_grad);
  second.storages.push_back({4, 24, "cpu"});
  for (Node& n : second.nodes) {
    if (!n.leaf) continue;
    n.leaf->grad_defined_before = true;
    n.leaf->grad_before = 5;
  }
  std::vector<Call> calls = {Small(), second, second};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, true}));
  // One reason: the old .grad's rank appearing follows from it being defined.
  ASSERT_EQ(sim.calls[1].reasons.size(), 1u);
  const MissReason& r = sim.calls[1].reasons[0];
  EXPECT_EQ(r.kind, MissReason::Kind::kTensor);
  EXPECT_EQ(r.node_type, "torch::autograd::AccumulateGrad");
  EXPECT_EQ(r.node_call, 2);
  EXPECT_EQ(r.node, NodeOfType(second, "torch::autograd::AccumulateGrad").id);
  EXPECT_EQ(r.role, "old_grad");
  EXPECT_EQ(r.tensor, 5);
  EXPECT_EQ(r.field, "defined");
  EXPECT_EQ(r.old_value, "undefined");
  EXPECT_EQ(r.new_value, "defined");
  EXPECT_EQ(r.leaf, "w");
  EXPECT_EQ(sim.calls[1].log,
            std::vector<std::string>{
                "Cache miss due to new autograd node: torch::autograd::AccumulateGrad (NodeCall 2)"});
  EXPECT_NE(ReasonHint(r).find("set_to_none"), std::string::npos);
}

TEST(CacheSim, HookAddedBetweenCalls) {
  Call hooked = Small();
  for (Node& n : hooked.nodes)
    if (n.type == "MulBackward0") n.hooks.push_back({Hook::Kind::kPostHook, "python", "fn"});
  const MissReason r = WhySecondMisses(hooked);
  EXPECT_EQ(r.kind, MissReason::Kind::kHooks);
  EXPECT_EQ(r.node_type, "MulBackward0");
  EXPECT_EQ(r.node_call, 1);
  EXPECT_EQ(r.old_value, "none");
  EXPECT_EQ(r.new_value, "post_hook");
}

TEST(CacheSim, DtypeChangeNamesTheFirstNodeAndTensor) {
  Call doubled = Small();
  for (TensorInfo& t : doubled.tensors) t.dtype = "float64";
  const MissReason r = WhySecondMisses(doubled);
  EXPECT_EQ(r.kind, MissReason::Kind::kTensor);
  EXPECT_EQ(r.node_call, 0);
  EXPECT_EQ(r.node_type, "SumBackward0");
  EXPECT_EQ(r.role, "grad_in");
  EXPECT_EQ(r.tensor, 0);
  EXPECT_EQ(r.field, "dtype");
  EXPECT_EQ(r.old_value, "float32");
  EXPECT_EQ(r.new_value, "float64");
}

TEST(CacheSim, NewOpInTheGraphIsANewAutogradNode) {
  Call other = Small();
  for (Node& n : other.nodes)
    if (n.type == "MulBackward0") n.type = "DivBackward0";
  std::vector<Call> calls = {Small(), other, Small(), other};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(sim.entries.size(), 2u);
  ASSERT_EQ(sim.calls[1].reasons.size(), 1u);
  const MissReason& r = sim.calls[1].reasons[0];
  EXPECT_EQ(r.kind, MissReason::Kind::kNodeType);
  EXPECT_EQ(r.node_call, 1);
  EXPECT_EQ(r.old_value, "MulBackward0");
  EXPECT_EQ(r.new_value, "DivBackward0");
  EXPECT_EQ(sim.calls[1].log,
            std::vector<std::string>{"Cache miss due to new autograd node: DivBackward0 (NodeCall 1)"});
}

TEST(CacheSim, ScalarChangeNamesOpArgumentAndValues) {
  Call changed = Small();
  changed.ops[0].args[2].b = true;  // expand's `implicit`
  const MissReason r = WhySecondMisses(changed);
  EXPECT_EQ(r.kind, MissReason::Kind::kScalar);
  EXPECT_EQ(r.node_type, "SumBackward0");
  EXPECT_EQ(r.op, 0);
  EXPECT_EQ(r.op_name, "aten::expand");
  EXPECT_EQ(r.arg, "implicit");
  EXPECT_EQ(r.old_value, "False");
  EXPECT_EQ(r.new_value, "True");
}

TEST(CacheSim, ANodeThatDidNotRunChangesTheEdges) {
  Call partial = Small();
  for (Node& n : partial.nodes) {
    if (!n.leaf) continue;
    n.executed = false;
    n.exec_order = -1;
  }
  const MissReason r = WhySecondMisses(partial);
  EXPECT_EQ(r.kind, MissReason::Kind::kEdges);
  EXPECT_EQ(r.node_type, "MulBackward0");
}

TEST(CacheSim, ShorterGraphThanTheCachedOneEndsIt) {
  // The cached graph runs AccumulateGrad as a second root after
  // MulBackward0; this call runs only the first two nodes: a prefix.
  Call longer = Small(), shorter = Small();
  longer.nodes[1].next = {{}, {}};
  longer.roots = {0, 2};
  shorter.nodes[1].next = {{}, {}};
  shorter.nodes[2].executed = false;
  shorter.nodes[2].exec_order = -1;
  std::vector<Call> calls = {longer, shorter};
  CacheSimulation sim = Simulate(&calls, DynamicMode::kAuto);
  ASSERT_EQ(sim.calls[1].reasons.size(), 1u);
  EXPECT_EQ(sim.calls[1].reasons[0].kind, MissReason::Kind::kGraphEnds);
  EXPECT_EQ(sim.calls[1].reasons[0].old_value, "torch::autograd::AccumulateGrad");
  EXPECT_EQ(sim.calls[1].reasons[0].node_type, "MulBackward0");
  EXPECT_EQ(sim.calls[1].reasons[0].node_call, 1);
}

// --- compiled programs ------------------------------------------------------

// An op of one tensor argument `self` and one output.
Op UnaryOp(int64_t index, const std::string& name, int64_t node, Op::Phase phase, int64_t self, int64_t out) {
  Op op;
  op.index = index;
  op.name = name;
  op.node = node;
  op.phase = phase;
  op.args = {Arg::Tensor(self)};
  op.arg_names = {"self"};
  op.outputs = {Arg::Tensor(out)};
  return op;
}

TEST(CompiledProgram, DeadOpsAreRemovedAndIntermediatesFreed) {
  Call call = Small();
  // MulBackward0 also computes a negation nothing reads.
  call.tensors.push_back(SmallTensor(5, {2, 3}, 5, kRoleOpOutput));
  call.storages.push_back({5, 24, "cpu"});
  call.ops.push_back(UnaryOp(2, "aten::neg", 1, Op::Phase::kNode, 1, 5));
  std::vector<Call> store = {call};
  std::vector<CacheCall> calls;
  CacheSimulation sim = Simulate(&store, DynamicMode::kAuto, &calls);
  CompiledProgram p = BuildProgram(calls, sim, 0);
  EXPECT_EQ(p.removed, std::vector<int64_t>{2});
  ASSERT_EQ(p.ops.size(), 2u);
  EXPECT_EQ(p.ops[0].op, 0);
  EXPECT_EQ(p.ops[1].op, 1);
  EXPECT_EQ(p.ops[0].node_call, 0);
  EXPECT_EQ(p.ops[1].node_call, 1);
  // t0 is read only by expand; t1 and x only by mul; t3 is w's .grad.
  EXPECT_EQ(p.ops[0].frees, std::vector<int64_t>{0});
  EXPECT_EQ(p.ops[1].frees, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(p.outputs.size(), 1u);
  EXPECT_EQ(p.outputs[0].tensor, 3);
  EXPECT_EQ(p.outputs[0].what, "w.grad");
  std::vector<std::string> inputs;
  for (const ProgramInput& in : p.inputs) inputs.push_back("t" + std::to_string(in.tensor) + " " + in.role);
  EXPECT_EQ(inputs, (std::vector<std::string>{"t0 grad_in", "t2 saved"}));
}

TEST(CompiledProgram, AccumulationIntoLeavesRunsLast) {
  Call call = Small();
  // AccumulateGrad assigns .grad (a detach of the incoming gradient); a
  // later engine op reads only x, so the assignment can go last.
  call.tensors.push_back(SmallTensor(5, {2, 3}, 3, kRoleOpOutput | kRoleFinalGrad));
  call.tensors.push_back(SmallTensor(6, {2, 3}, 5, kRoleOpOutput));
  call.storages.push_back({5, 24, "cpu"});
  call.tensors[3].roles = kRoleOpOutput | kRoleNodeInput;
  for (Node& n : call.nodes)
    if (n.leaf) n.leaf->grad_after = 5;
  call.ops.push_back(UnaryOp(2, "aten::detach", 2, Op::Phase::kNode, 3, 5));
  call.ops.push_back(UnaryOp(3, "aten::clone", -1, Op::Phase::kEngine, 2, 6));
  call.values.push_back(Value());
  call.values.back().tensor = 6;
  call.values.back().when = Value::When::kEnd;
  std::vector<Call> store = {call};
  std::vector<CacheCall> calls;
  CacheSimulation sim = Simulate(&store, DynamicMode::kAuto, &calls);
  CompiledProgram p = BuildProgram(calls, sim, 0);
  std::vector<int64_t> order;
  for (const ProgramOp& op : p.ops) order.push_back(op.op);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 3, 2}));
  EXPECT_EQ(p.ops.back().kind, ProgramOp::Kind::kAccumulate);

  // An engine op that reads the incoming gradient after AccumulateGrad
  // pins it in place: the order stays as recorded.
  store[0].ops[3].args = {Arg::Tensor(5)};
  sim = Simulate(&store, DynamicMode::kAuto, &calls);
  p = BuildProgram(calls, sim, 0);
  order.clear();
  for (const ProgramOp& op : p.ops) order.push_back(op.op);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(CompiledProgram, DynamicSizesBecomeSymbols) {
  std::vector<Call> store = {WithBatch(2), WithBatch(5)};
  std::vector<CacheCall> calls;
  CacheSimulation sim = Simulate(&store, DynamicMode::kAuto, &calls);
  CompiledProgram p = BuildProgram(calls, sim, 0);
  EXPECT_EQ(p.size_symbols.size(), size_t(sim.entries[0].dynamic_sizes()));
  // x (t2) is an input whose rows are a symbol; its columns stay 3.
  const ProgramInput* x = nullptr;
  for (const ProgramInput& in : p.inputs)
    if (in.tensor == 2) x = &in;
  ASSERT_NE(x, nullptr);
  EXPECT_GE(x->symbols[0], 0);
  EXPECT_EQ(x->symbols[1], -1);
  EXPECT_EQ(sim.entries[0].sizes[size_t(x->symbols[0])].input.where.tensor, 2);
  // expand's size: element 0 a symbol, element 1 static.
  ASSERT_EQ(p.ops[0].symbols.size(), 1u);
  EXPECT_EQ(p.ops[0].symbols[0].arg, "size");
  EXPECT_EQ(p.ops[0].symbols[0].element, 0);
}

TEST(BindProgram, EveryCallRunsItsEntrysProgramWithItsOwnSizes) {
  std::vector<Call> store = {WithBatch(2), WithBatch(5), WithBatch(7)};
  std::vector<CacheCall> calls;
  CacheSimulation sim = Simulate(&store, DynamicMode::kAuto, &calls);
  std::vector<BoundCall> bound;
  std::string err;
  ASSERT_TRUE(BindCalls(calls, sim, &bound, &err)) << err;
  ASSERT_EQ(bound.size(), 3u);
  EXPECT_EQ(bound[2].entry, 0);
  EXPECT_EQ(bound[2].call.ops[0].args[1].ints, (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(bound[2].call.tensors[2].shape, (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(bound[2].recorded_ops, (std::vector<int64_t>{0, 1}));
  for (size_t i = 0; i < bound[2].call.ops.size(); ++i) EXPECT_EQ(bound[2].call.ops[i].index, int64_t(i));
}

TEST(BindProgram, RefusesACallThatDoesNotFitNamingTheOp) {
  std::vector<Call> store = {WithBatch(2)};
  std::vector<CacheCall> calls;
  CacheSimulation sim = Simulate(&store, DynamicMode::kAuto, &calls);
  CompiledProgram p = BuildProgram(calls, sim, 0);
  BoundCall out;
  std::string err;

  Call other = WithBatch(2);
  other.ops[1].name = "aten::div";
  EXPECT_FALSE(BindProgram(p, other, &out, &err));
  EXPECT_NE(err.find("does not fit the program of cache entry 0"), std::string::npos) << err;
  EXPECT_NE(err.find("op 1 (aten::mul.Tensor)"), std::string::npos) << err;

  // A size the program compiled in as static may not change.
  Call bigger = WithBatch(4);
  EXPECT_FALSE(BindProgram(p, bigger, &out, &err));
  EXPECT_NE(err.find("a static size 2"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
