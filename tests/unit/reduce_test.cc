// The cuts `cautograd reduce` makes, replayed for real: every op of every
// built-in model cut out alone (with what it needs), and random sets of
// ops, must replay exactly what the whole call recorded for them. And the
// reducer itself, on a planted divergence.
#include "lib/reduce/reduce.h"

#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lib/models/models.h"
#include "lib/recorder/recorder.h"
#include "lib/reduce/redact.h"
#include "lib/reduce/slice.h"
#include "lib/replay/replay.h"

namespace cautograd {
namespace {

Trace RecordModel(const std::string& name) {
  RecorderOptions options;
  options.values = ValuesMode::kAll;
  Recorder recorder(options);
  ModelOptions model;
  model.seed = 3;
  model.steps = name == "mlp" ? 2 : 0;  // the second step accumulates into .grad
  ModelRun run;
  std::string err;
  EXPECT_TRUE(RunModel(
      name, model, [&](const NamedTensors& n) { recorder.NameParameters(n); }, &run, &err))
      << err;
  return recorder.Finish();
}

// Replays `call` cut to `ops`: false (and a message) unless it matches
// what the recording holds, exactly, with at least one value compared
// whenever the cut checks any.
::testing::AssertionResult CutReplays(const Trace& trace, const CallSlicer& slicer, std::vector<int64_t> ops) {
  std::string why;
  if (!slicer.Close(&ops, &why)) return ::testing::AssertionFailure() << "no sound cut: " << why;
  Trace cut;
  cut.meta = trace.meta;
  cut.calls.emplace_back();
  if (!slicer.Cut(ops, &cut.calls[0], nullptr, nullptr, &why)) return ::testing::AssertionFailure() << why;
  cut.calls[0].index = 0;
  ReplayOptions options;
  options.check = true;
  ReplayReport report;
  if (!Replay(cut, options, &report, &why)) return ::testing::AssertionFailure() << "refused: " << why;
  const CallReplay& r = report.calls.at(0);
  if (r.diverged)
    return ::testing::AssertionFailure() << "diverged at cut op " << r.divergence.op << " (" << r.divergence.op_name
                                         << "): " << r.divergence.what << " " << r.divergence.detail;
  if (r.worst_abs != 0) return ::testing::AssertionFailure() << "worst abs error " << r.worst_abs;
  if (r.inputs_synthesized != 0) return ::testing::AssertionFailure() << r.inputs_synthesized << " inputs synthesized";
  if (r.ops != int64_t(ops.size())) return ::testing::AssertionFailure() << "ran " << r.ops << " of " << ops.size();
  return ::testing::AssertionSuccess();
}

TEST(Reduce, EveryOpAloneReplaysAsRecorded) {
  for (const ModelInfo& model : BuiltinModels()) {
    Trace trace = RecordModel(model.name);
    for (const Call& call : trace.calls) {
      CallSlicer slicer(call);
      for (const Op& op : call.ops) {
        std::vector<int64_t> alone = {op.index}, closed = alone;
        std::string why;
        ASSERT_TRUE(slicer.Close(&closed, &why)) << model.name << " op " << op.index << ": " << why;
        // Values recorded for every op's outputs: nothing else is needed,
        // except the ops that write memory the op reads in place.
        EXPECT_LE(closed.size(), 8u) << model.name << " op " << op.index << " " << OpLabel(op);
        EXPECT_TRUE(CutReplays(trace, slicer, alone)) << model.name << ", call " << call.index << ", op " << op.index
                                                      << " (" << OpLabel(op) << ")";
      }
    }
  }
}

TEST(Reduce, RandomSetsOfOpsReplayAsRecorded) {
  std::mt19937 gen(11);
  for (const ModelInfo& model : BuiltinModels()) {
    Trace trace = RecordModel(model.name);
    for (const Call& call : trace.calls) {
      if (call.ops.size() < 2) continue;
      CallSlicer slicer(call);
      for (int round = 0; round < 6; ++round) {
        std::vector<int64_t> ops;
        std::bernoulli_distribution keep(round < 3 ? 0.2 : 0.6);
        for (const Op& op : call.ops)
          if (keep(gen)) ops.push_back(op.index);
        if (ops.empty()) ops.push_back(int64_t(call.ops.size()) / 2);
        EXPECT_TRUE(CutReplays(trace, slicer, ops)) << model.name << ", call " << call.index << ", round " << round;
      }
    }
  }
}

TEST(Reduce, WithoutValuesTheCutKeepsWhatMakesTheInputs) {
  // Values of the inputs only: a cut must keep every op the kept one
  // depends on, back to the call's inputs, and then replays.
  RecorderOptions options;
  options.values = ValuesMode::kInputs;
  Recorder recorder(options);
  ModelOptions model;
  model.seed = 3;
  ModelRun run;
  std::string err;
  ASSERT_TRUE(RunModel(
      "mlp", model, [&](const NamedTensors& n) { recorder.NameParameters(n); }, &run, &err))
      << err;
  Trace trace = recorder.Finish();
  const Call& call = trace.calls[0];
  CallSlicer slicer(call);
  const int64_t last = int64_t(call.ops.size()) - 1;
  std::vector<int64_t> ops = {last};
  ASSERT_TRUE(slicer.Close(&ops, &err)) << err;
  EXPECT_GT(ops.size(), 1u);
  EXPECT_TRUE(CutReplays(trace, slicer, {last}));
}

TEST(Reduce, FindsThePlantedDivergence) {
  Trace trace = RecordModel("cnn");
  Call& call = trace.calls[0];
  // Change a recorded output in the middle of the call.
  int64_t planted = -1;
  int seen = 0;
  for (Value& v : call.values)
    if (v.when == Value::When::kAfterOp && v.dtype == "float32" && v.numel > 0 && ++seen == 8) {
      float f;
      std::memcpy(&f, v.data.data(), 4);
      f += 1000;
      std::memcpy(&v.data[0], &f, 4);
      planted = v.op;
      break;
    }
  ASSERT_GE(planted, 0);
  ReplayOptions check;
  check.check = true;
  ReplayReport whole;
  std::string err;
  ASSERT_TRUE(Replay(trace, check, &whole, &err)) << err;
  ASSERT_TRUE(whole.diverged());
  ASSERT_EQ(whole.calls[0].divergence.op, planted);

  // Knowing nothing of where (as for a command), delta debugging alone.
  ReduceOptions options;
  ReduceStats stats;
  Candidate result;
  auto diverges_there = [&](const Candidate& c) {
    ReplayReport r;
    std::string e;
    if (!Replay(c.trace, check, &r, &e) || !r.diverged()) return false;
    return c.ops[0][size_t(r.calls.back().divergence.op)] == planted;
  };
  ASSERT_TRUE(Reduce(trace, options, diverges_there, &result, &stats, &err)) << err;
  EXPECT_EQ(result.num_ops(), 1);
  EXPECT_EQ(result.ops.at(0).at(0), planted);
  EXPECT_GT(stats.tried, 2);

  // Told where: one candidate.
  options.target_call = 0;
  options.target_op = planted;
  ASSERT_TRUE(Reduce(trace, options, diverges_there, &result, &stats, &err)) << err;
  EXPECT_EQ(result.num_ops(), 1);
  EXPECT_EQ(stats.tried, 1);

  // Redaction keeps what the divergence depends on as recorded: the same
  // error on the same output.
  const Divergence target = whole.calls[0].divergence;
  RedactReport redacted;
  Redact(&result.trace, 7, [&](const Trace& t) {
    ReplayReport r;
    std::string e;
    if (!Replay(t, check, &r, &e) || !r.diverged()) return false;
    const Divergence& d = r.calls.back().divergence;
    return d.max_abs == target.max_abs && d.max_rel == target.max_rel;
  }, &redacted);
  EXPECT_GT(redacted.tests, 0);
  EXPECT_GT(redacted.kept, 0);
  EXPECT_EQ(redacted.kept, int64_t(redacted.kept_what.size()));
}

}  // namespace
}  // namespace cautograd
