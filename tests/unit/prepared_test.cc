#include "lib/replay/prepared.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lib/bridge/names.h"
#include "lib/bridge/tensor_bytes.h"
#include "lib/models/models.h"
#include "lib/recompile/compiled_program.h"
#include "lib/recorder/recorder.h"

namespace cautograd {
namespace {

Trace RecordModel(const std::string& name) {
  RecorderOptions options;
  options.values = ValuesMode::kAll;
  Recorder recorder(options);
  ModelOptions model;
  model.seed = 3;
  model.steps = name == "mlp" ? 2 : 0;  // mlp's second step accumulates into .grad
  std::string err;
  EXPECT_TRUE(RunModel(
      name, model, [&](const NamedTensors& n) { recorder.NameParameters(n); }, nullptr, &err))
      << err;
  return recorder.Finish();
}

// Every end value the call recorded (each leaf's final .grad), compared
// with what a prepared run left; returns how many were compared.
int64_t ExpectEndValues(const std::string& what, const Call& call, const PreparedCall& prepared) {
  int64_t compared = 0;
  for (const Value& v : call.values) {
    if (v.when != Value::When::kEnd) continue;
    c10::ScalarType dtype;
    EXPECT_TRUE(DtypeFromName(v.dtype, &dtype));
    at::Tensor want = TensorFromBytes(v.data, call.tensors[size_t(v.tensor)].shape, dtype);
    at::Tensor got = prepared.Value(v.tensor);
    EXPECT_TRUE(got.defined()) << what << ": tensor " << v.tensor;
    if (!got.defined()) continue;
    // Same kernels on the same inputs: exact.
    EXPECT_TRUE(at::equal(got.contiguous(), want)) << what << ": tensor " << v.tensor;
    ++compared;
  }
  return compared;
}

TEST(PreparedCall, EveryModelRunsAsReplayDoesRecordedAndCompiled) {
  for (const ModelInfo& model : BuiltinModels()) {
    Trace trace = RecordModel(model.name);
    std::vector<CacheCall> calls;
    for (const Call& call : trace.calls) calls.push_back({"", &call});
    const CacheSimulation sim = SimulateCache(calls, DynamicMode::kAuto);
    std::vector<BoundCall> bound;
    std::string err;
    ASSERT_TRUE(BindCalls(calls, sim, &bound, &err)) << model.name << ": " << err;
    int64_t compared = 0;  // autograd::grad calls (doublegrad's first) leave no .grad to compare
    for (size_t c = 0; c < trace.calls.size(); ++c) {
      const std::string what = model.name + " call " + std::to_string(c);
      for (const Call* call : {&trace.calls[c], &bound[c].call}) {
        PreparedCall prepared;
        ASSERT_TRUE(prepared.Prepare(*call, ReplayOptions(), &err)) << what << ": " << err;
        EXPECT_EQ(prepared.ops(), int64_t(call->ops.size())) << what;
        // Twice: a run must not change what the next one starts from.
        for (int run = 0; run < 2; ++run) {
          double us = -1;
          ASSERT_TRUE(prepared.Run(&us, &err)) << what << ": " << err;
          EXPECT_GE(us, 0);
          compared += ExpectEndValues(what, *call, prepared);
        }
        std::vector<double> op_us;
        ASSERT_TRUE(prepared.RunKernels(&op_us, &err)) << what << ": " << err;
        EXPECT_EQ(int64_t(op_us.size()), prepared.ops());
        ExpectEndValues(what + " (kernels)", *call, prepared);
      }
    }
    EXPECT_GT(compared, 0) << model.name;
  }
}

TEST(PreparedCall, RefusesWhatReplayRefuses) {
  Trace trace = RecordModel("mlp");
  Call call = trace.calls[0];
  call.ops[0].name = "evil::op";
  PreparedCall prepared;
  std::string err;
  EXPECT_FALSE(prepared.Prepare(call, ReplayOptions(), &err));
  EXPECT_NE(err.find("namespace 'evil'"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
