// The cache simulation and compiled programs on calls the recorder captured
// from real libtorch backward passes: the cases users hit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lib/models/models.h"
#include "lib/recompile/cache_sim.h"
#include "lib/recompile/compiled_program.h"
#include "lib/recorder/recorder.h"
#include "lib/replay/replay.h"

namespace cautograd {
namespace {

constexpr int kBatch = 8;

Trace Record(const std::string& model, int steps, ValuesMode values = ValuesMode::kInts,
             const std::string& calls = "all") {
  RecorderOptions options;
  options.values = values;
  std::string err;
  EXPECT_TRUE(CallFilter::Parse(calls, &options.calls, &err)) << err;
  Recorder recorder(options);
  ModelOptions model_options;
  model_options.seed = 11;
  model_options.steps = steps;
  model_options.batch = kBatch;
  ModelRun run;
  EXPECT_TRUE(RunModel(
      model, model_options, [&](const NamedTensors& n) { recorder.NameParameters(n); }, &run, &err))
      << err;
  return recorder.Finish();
}

std::vector<CacheCall> CallsOf(const Trace& trace) {
  std::vector<CacheCall> calls;
  for (const Call& call : trace.calls) calls.push_back({"trace", &call});
  return calls;
}

std::vector<bool> Hits(const CacheSimulation& sim) {
  std::vector<bool> hits;
  for (const CacheCallResult& c : sim.calls) hits.push_back(c.hit);
  return hits;
}

// The model's batch alternates kBatch, kBatch + 2, ...; calls 0 and 1 also
// differ in .grad (undefined, then zeroed in place).
TEST(RecompileRecorded, DynamicModelRecompilesForGradsThenOnceForShapesThenHits) {
  Trace trace = Record("dynamic", 5);
  ASSERT_EQ(trace.calls.size(), 5u);
  CacheSimulation sim = SimulateCache(CallsOf(trace), DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, false, true, true}));
  ASSERT_FALSE(sim.calls[1].reasons.empty());
  EXPECT_EQ(sim.calls[1].reasons[0].role, "old_grad");
  EXPECT_EQ(sim.calls[1].reasons[0].field, "defined");
  const CacheCallResult& shapes = sim.calls[2];
  ASSERT_FALSE(shapes.reasons.empty());
  for (const MissReason& r : shapes.reasons) {
    EXPECT_EQ(r.kind, MissReason::Kind::kSize);
    EXPECT_TRUE(r.now_dynamic);
    EXPECT_EQ(r.old_value, std::to_string(kBatch + 2));
    EXPECT_EQ(r.new_value, std::to_string(kBatch));
  }
  EXPECT_EQ(sim.entries[size_t(shapes.entry)].dynamic_sizes(), int64_t(shapes.reasons.size()));
}

TEST(RecompileRecorded, BatchSizeChangeAloneRecompilesOnceThenHits) {
  // From the second step on, .grad is always defined: only the batch changes.
  Trace trace = Record("dynamic", 6, ValuesMode::kInts, "1-5");
  ASSERT_EQ(trace.calls.size(), 5u);
  CacheSimulation sim = SimulateCache(CallsOf(trace), DynamicMode::kAuto);
  EXPECT_EQ(Hits(sim), (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(sim.recompiles(), 1);
  EXPECT_EQ(sim.entries.size(), 1u);

  CacheSimulation fixed = SimulateCache(CallsOf(trace), DynamicMode::kStatic);
  EXPECT_EQ(Hits(fixed), (std::vector<bool>{false, false, true, true, true}));
  EXPECT_EQ(fixed.entries.size(), 2u);
}

TEST(RecompileRecorded, MlpGradDefinedOnTheSecondStepNamesTheParameter) {
  Trace trace = Record("mlp", 2);
  CacheSimulation sim = SimulateCache(CallsOf(trace), DynamicMode::kAuto);
  ASSERT_EQ(sim.calls.size(), 2u);
  ASSERT_FALSE(sim.calls[1].hit);
  ASSERT_EQ(sim.calls[1].reasons.size(), 1u);
  const MissReason& r = sim.calls[1].reasons[0];
  EXPECT_EQ(r.node_type, "torch::autograd::AccumulateGrad");
  EXPECT_EQ(r.role, "old_grad");
  EXPECT_EQ(r.old_value, "undefined");
  EXPECT_EQ(r.new_value, "defined");
  const Node& node = trace.calls[1].nodes[size_t(r.node)];
  ASSERT_TRUE(node.leaf.has_value());
  EXPECT_EQ(r.leaf, node.leaf->name);
  EXPECT_FALSE(r.leaf.empty());
}

// Two backward calls of (w * x).sum() with `between` run in between; .grad
// is reset so that only what `between` changes differs.
Trace TwoCalls(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& loss,
               const std::function<void(torch::Tensor&)>& between,
               torch::Dtype second_dtype = torch::kFloat) {
  torch::manual_seed(0);
  Recorder recorder;
  torch::Tensor w = torch::randn({3}, torch::requires_grad());
  loss(w, torch::randn({3})).backward();
  w.mutable_grad() = torch::Tensor();
  between(w);
  if (second_dtype != torch::kFloat) w = w.detach().to(second_dtype).requires_grad_(true);
  loss(w, torch::randn({3}, torch::TensorOptions().dtype(second_dtype))).backward();
  return recorder.Finish();
}

torch::Tensor MulSum(const torch::Tensor& w, const torch::Tensor& x) { return (w * x).sum(); }

// Why the second of two calls missed.
std::vector<MissReason> SecondCallReasons(const Trace& trace) {
  CacheSimulation sim = SimulateCache(CallsOf(trace), DynamicMode::kAuto);
  EXPECT_EQ(sim.calls.size(), 2u);
  if (sim.calls.size() != 2) return {};
  EXPECT_FALSE(sim.calls[1].hit);
  return sim.calls[1].reasons;
}

TEST(RecompileRecorded, HookAddedBetweenCalls) {
  Trace trace =
      TwoCalls(MulSum, [](torch::Tensor& w) { w.register_hook([](torch::Tensor g) { return g * 2; }); });
  std::vector<MissReason> reasons = SecondCallReasons(trace);
  ASSERT_EQ(reasons.size(), 1u);
  const MissReason& r = reasons[0];
  EXPECT_EQ(r.kind, MissReason::Kind::kHooks);
  EXPECT_EQ(r.node_type, "torch::autograd::AccumulateGrad");
  EXPECT_EQ(r.old_value, "none");
  EXPECT_EQ(r.new_value, "tensor_pre_hook");
}

TEST(RecompileRecorded, DtypeChange) {
  Trace trace = TwoCalls(
      MulSum, [](torch::Tensor&) {}, torch::kDouble);
  std::vector<MissReason> reasons = SecondCallReasons(trace);
  ASSERT_EQ(reasons.size(), 1u);
  const MissReason& r = reasons[0];
  EXPECT_EQ(r.kind, MissReason::Kind::kTensor);
  EXPECT_EQ(r.field, "dtype");
  EXPECT_EQ(r.node_call, 0);
  EXPECT_EQ(r.old_value, "float32");
  EXPECT_EQ(r.new_value, "float64");
}

TEST(RecompileRecorded, NewOpInTheGraph) {
  bool second = false;
  auto loss = [&](const torch::Tensor& w, const torch::Tensor& x) {
    torch::Tensor y = w * x;
    if (second) y = y.exp();
    second = true;
    return y.sum();
  };
  Trace trace = TwoCalls(loss, [](torch::Tensor&) {});
  std::vector<MissReason> reasons = SecondCallReasons(trace);
  ASSERT_EQ(reasons.size(), 1u);
  const MissReason& r = reasons[0];
  EXPECT_EQ(r.kind, MissReason::Kind::kNodeType);
  EXPECT_EQ(r.node_call, 1);
  EXPECT_EQ(r.old_value, "MulBackward0");
  EXPECT_EQ(r.new_value, "ExpBackward0");
}

// The compiled program of every call of every built-in model computes what
// the recorded op stream computed, value for value.
TEST(RecompileRecorded, CompiledProgramsReproduceEveryModel) {
  for (const ModelInfo& model : BuiltinModels()) {
    Trace trace = Record(model.name, model.name == "dynamic" ? 4 : 2, ValuesMode::kAll);
    std::vector<CacheCall> calls = CallsOf(trace);
    CacheSimulation sim = SimulateCache(calls, DynamicMode::kAuto);
    std::vector<BoundCall> bound;
    std::string err;
    ASSERT_TRUE(BindCalls(calls, sim, &bound, &err)) << model.name << ": " << err;
    Trace compiled = trace;
    for (size_t i = 0; i < bound.size(); ++i) compiled.calls[i] = bound[i].call;
    ReplayOptions options;
    options.check = true;
    ReplayReport report;
    ASSERT_TRUE(Replay(compiled, options, &report, &err)) << model.name << ": " << err;
    EXPECT_FALSE(report.diverged()) << model.name;
    EXPECT_GT(report.compared(), 0) << model.name;
    ASSERT_EQ(report.calls.size(), trace.calls.size()) << model.name;
  }
}

}  // namespace
}  // namespace cautograd
