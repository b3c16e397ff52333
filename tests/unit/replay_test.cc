#include "lib/replay/replay.h"

#include <limits>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lib/models/models.h"
#include "lib/recorder/recorder.h"
#include "lib/replay/isolated.h"
#include "lib/trace/trace_io.h"

namespace cautograd {
namespace {

Trace RecordModel(const std::string& name, ValuesMode values) {
  RecorderOptions options;
  options.values = values;
  Recorder recorder(options);
  ModelOptions model;
  model.seed = 5;
  model.steps = name == "mlp" ? 2 : 0;  // mlp's second step accumulates into .grad
  ModelRun run;
  std::string err;
  EXPECT_TRUE(RunModel(
      name, model, [&](const NamedTensors& n) { recorder.NameParameters(n); }, &run, &err))
      << err;
  return recorder.Finish();
}

ReplayOptions Checking() {
  ReplayOptions options;
  options.check = true;
  return options;
}

TEST(Replay, EveryModelReproducesItsRecordedValues) {
  for (const ModelInfo& model : BuiltinModels()) {
    Trace trace = RecordModel(model.name, ValuesMode::kAll);
    ReplayReport report;
    std::string err;
    ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << model.name << ": " << err;
    ASSERT_EQ(report.calls.size(), trace.calls.size()) << model.name;
    EXPECT_FALSE(report.diverged()) << model.name << ": op " << report.calls.back().divergence.op << " "
                                    << report.calls.back().divergence.op_name;
    for (const CallReplay& c : report.calls) {
      EXPECT_GT(c.compared, 0) << model.name;
      // Same machine, same kernels, same inputs: exact, not merely close.
      EXPECT_EQ(c.worst_abs, 0) << model.name;
      EXPECT_EQ(c.inputs_synthesized, 0) << model.name;
      EXPECT_EQ(c.ops, int64_t(trace.calls[size_t(c.index)].ops.size())) << model.name;
    }
  }
}

TEST(Replay, AlteredGradientIsTheFirstDivergence) {
  Trace trace = RecordModel("mlp", ValuesMode::kAll);
  Call& call = trace.calls[0];
  // Alter the recorded output of the 5th op that has one, by a lot.
  int seen = 0;
  Value* victim = nullptr;
  for (Value& v : call.values)
    if (v.when == Value::When::kAfterOp && v.dtype == "float32" && ++seen == 5) victim = &v;
  ASSERT_NE(victim, nullptr);
  float* data = reinterpret_cast<float*>(&victim->data[0]);
  data[0] += 1.0f;
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << err;
  ASSERT_TRUE(report.diverged());
  const Divergence& d = report.calls[0].divergence;
  EXPECT_EQ(d.op, victim->op);
  EXPECT_EQ(
      d.op_name,
      call.ops[size_t(victim->op)].name +
          (call.ops[size_t(victim->op)].overload.empty() ? "" : "." + call.ops[size_t(victim->op)].overload));
  EXPECT_EQ(d.tensor, victim->tensor);
  EXPECT_NEAR(d.max_abs, 1.0, 1e-3);
  EXPECT_EQ(report.calls.size(), 1u) << "replay goes on after a divergence";
}

TEST(Replay, AlteredFinalGradNamesTheLeaf) {
  Trace trace = RecordModel("embedding", ValuesMode::kAll);
  Value* final_grad = nullptr;
  for (Value& v : trace.calls[0].values)
    if (v.when == Value::When::kEnd) final_grad = &v;
  ASSERT_NE(final_grad, nullptr);
  // Drop the op-output values so the final gradient is what gets compared.
  auto& values = trace.calls[0].values;
  std::vector<Value> kept;
  for (Value& v : values)
    if (v.when != Value::When::kAfterOp) kept.push_back(v);
  values = kept;
  for (Value& v : values)
    if (v.when == Value::When::kEnd) {
      reinterpret_cast<float*>(&v.data[0])[0] *= 2;
      v.data[1] ^= 0x10;
      break;
    }
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << err;
  ASSERT_TRUE(report.diverged());
  EXPECT_EQ(report.calls[0].divergence.op, -1);
  EXPECT_NE(report.calls[0].divergence.what.find("final .grad of leaf '"), std::string::npos)
      << report.calls[0].divergence.what;
}

TEST(Replay, ToleranceDecidesSmallDifferences) {
  Trace trace = RecordModel("custom", ValuesMode::kAll);
  for (Value& v : trace.calls[0].values) {
    if (v.when == Value::When::kAfterOp && v.dtype == "float32" && v.numel > 0) {
      float* f = reinterpret_cast<float*>(&v.data[0]);
      f[0] = std::nextafter(f[0], f[0] + 1.0f);  // one ulp
      break;
    }
  }
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << err;
  EXPECT_FALSE(report.diverged()) << "one ulp is within float32's default tolerance";
  ReplayOptions exact = Checking();
  exact.rtol = 0;
  exact.atol = 0;
  ASSERT_TRUE(Replay(trace, exact, &report, &err)) << err;
  EXPECT_TRUE(report.diverged());
}

TEST(Replay, InputsKeepTheirAliasing) {
  // a and b are views of one storage that come into the call from outside.
  // A hook writes through a and then reads b: replay must see the write
  // through b as the recorded run did, or the hook's output will differ.
  torch::manual_seed(2);
  torch::Tensor base = torch::randn({4});
  torch::Tensor a = base.view({2, 2}), b = base.view({4});
  torch::Tensor w = torch::randn({4}, torch::requires_grad());
  torch::Tensor z = w * 2;
  z.register_hook([a, b](torch::Tensor g) {
    a.mul_(3);
    return g * b;
  });
  RecorderOptions options;
  options.values = ValuesMode::kAll;
  Recorder recorder(options);
  (z * 1.5).sum().backward();
  Trace trace = recorder.Finish();
  ASSERT_EQ(trace.calls.size(), 1u);
  const Call& call = trace.calls[0];
  int64_t a_id = -1, b_id = -1;
  for (const Op& op : call.ops) {
    if (op.name == "aten::mul_") a_id = op.args[0].tensor;
    if (op.name == "aten::mul" && op.phase == Op::Phase::kPreHook) b_id = op.args[1].tensor;
  }
  ASSERT_GE(a_id, 0);
  ASSERT_GE(b_id, 0);
  EXPECT_EQ(call.tensors[size_t(a_id)].storage, call.tensors[size_t(b_id)].storage);
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << err;
  EXPECT_FALSE(report.diverged()) << report.calls[0].divergence.op_name;
  EXPECT_GT(report.calls[0].compared, 0);

  // b was first used after a.mul_ wrote its memory: replay does not write
  // its recorded value, it checks that the write through a reproduced it.
  EXPECT_EQ(report.calls[0].inputs_aliased, 1);
  Trace tampered = trace;
  for (Value& v : tampered.calls[0].values)
    if (v.tensor == b_id && v.when == Value::When::kFirstUse) reinterpret_cast<float*>(&v.data[0])[3] += 1;
  ASSERT_TRUE(Replay(tampered, Checking(), &report, &err)) << err;
  ASSERT_TRUE(report.diverged());
  EXPECT_EQ(report.calls[0].divergence.op_name, "aten::mul.Tensor");
  EXPECT_EQ(report.calls[0].divergence.tensor, b_id);
  EXPECT_NE(report.calls[0].divergence.what.find("shares memory an earlier op wrote"), std::string::npos);
}

TEST(Replay, AnInfinityMatchesOnlyItself) {
  // Record a call whose first op output is made infinite on purpose, then
  // flip the sign of the recorded infinity: --check must catch it.
  torch::Tensor w = torch::ones({2}, torch::requires_grad());
  RecorderOptions options;
  options.values = ValuesMode::kAll;
  Recorder recorder(options);
  (w * std::numeric_limits<float>::infinity()).sum().backward();
  Trace trace = recorder.Finish();
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, Checking(), &report, &err)) << err;
  EXPECT_FALSE(report.diverged()) << "+inf must match +inf";
  bool flipped = false;
  for (Value& v : trace.calls[0].values) {
    if (v.when != Value::When::kEnd || v.dtype != "float32") continue;
    float* f = reinterpret_cast<float*>(&v.data[0]);
    ASSERT_TRUE(std::isinf(f[0]));
    f[0] = -f[0];
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  ReplayOptions only_final = Checking();
  ASSERT_TRUE(Replay(trace, only_final, &report, &err)) << err;
  EXPECT_TRUE(report.diverged()) << "-inf must not match +inf";
}

TEST(Replay, SynthesizesFloatsDeterministically) {
  Trace trace = RecordModel("mlp", ValuesMode::kInts);
  ReplayOptions options;
  options.seed = 9;
  ReplayReport a, b;
  std::string err;
  ASSERT_TRUE(Replay(trace, options, &a, &err)) << err;
  ASSERT_TRUE(Replay(trace, options, &b, &err)) << err;
  EXPECT_GT(a.calls[0].inputs_synthesized, 0);
  EXPECT_EQ(a.calls[0].ops, int64_t(trace.calls[0].ops.size()));
  EXPECT_FALSE(a.checked);
}

TEST(Replay, CallSelection) {
  Trace trace = RecordModel("mlp", ValuesMode::kAll);
  ReplayOptions options = Checking();
  options.call = 1;
  ReplayReport report;
  std::string err;
  ASSERT_TRUE(Replay(trace, options, &report, &err)) << err;
  ASSERT_EQ(report.calls.size(), 1u);
  EXPECT_EQ(report.calls[0].index, 1);
  options.call = 7;
  EXPECT_FALSE(Replay(trace, options, &report, &err));
  EXPECT_EQ(err, "no call 7: the trace has 2 (numbered from 0)");
}

// Random damage to a real trace must end in a report or a one-line error,
// never a crash of cautograd itself.
TEST(Replay, SurvivesDamagedPrograms) {
  const Trace clean = RecordModel("embedding", ValuesMode::kAll);
  std::mt19937 rng(1234);
  const std::vector<std::string> names = {"aten::mm",     "aten::add",          "aten::sum", "aten::view",
                                          "aten::expand", "aten::index_select", "aten::cat", "aten::bogus"};
  int refused = 0, ran = 0;
  for (int round = 0; round < 60; ++round) {
    Trace trace = clean;
    Call& call = trace.calls[0];
    for (int k = 0; k < 3; ++k) {
      Op& op = call.ops[rng() % call.ops.size()];
      switch (rng() % 4) {
        case 0:
          op.name = names[rng() % names.size()];
          op.overload = "";
          break;
        case 1:
          if (!op.args.empty()) std::swap(op.args[0], op.args[rng() % op.args.size()]);
          break;
        case 2:
          for (Arg& a : op.args)
            if (a.kind == Arg::Kind::kTensor) a.tensor = int64_t(rng() % call.tensors.size());
          break;
        case 3:
          for (Arg& a : op.args)
            if (a.kind == Arg::Kind::kIntList)
              for (int64_t& v : a.ints) v = int64_t(rng() % 7) - 1;
          break;
      }
    }
    ReplayReport report;
    std::string err;
    if (ReplayIsolated(trace, Checking(), &report, &err)) {
      ++ran;
    } else {
      ++refused;
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
      EXPECT_FALSE(err.empty());
    }
  }
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace cautograd
