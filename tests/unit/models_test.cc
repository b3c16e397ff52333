#include "lib/models/models.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace cautograd {
namespace {

bool AllFinite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

ModelRun RunOrFail(const std::string& name, const ModelOptions& options,
                   const ParameterObserver& observer = nullptr) {
  ModelRun run;
  std::string err;
  EXPECT_TRUE(RunModel(name, options, observer, &run, &err)) << name << ": " << err;
  return run;
}

TEST(ModelsTest, EveryModelRunsWithDefaultsAndGivesFiniteGrads) {
  ASSERT_FALSE(BuiltinModels().empty());
  for (const ModelInfo& info : BuiltinModels()) {
    SCOPED_TRACE(info.name);
    int observer_calls = 0;
    NamedTensors params;
    ModelRun run = RunOrFail(info.name, ModelOptions{}, [&](const NamedTensors& p) {
      ++observer_calls;
      params = p;
    });
    EXPECT_EQ(observer_calls, 1);
    ASSERT_FALSE(params.empty());
    ASSERT_EQ(run.losses.size(), static_cast<size_t>(info.default_steps));
    for (double loss : run.losses) EXPECT_TRUE(std::isfinite(loss));
    // Every model's parameters all take part in the loss.
    ASSERT_EQ(run.grads.size(), params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(run.grads[i].first, params[i].first);
      const at::Tensor& grad = run.grads[i].second;
      ASSERT_TRUE(grad.defined()) << run.grads[i].first;
      EXPECT_GT(grad.numel(), 0) << run.grads[i].first;
      EXPECT_EQ(grad.sizes(), params[i].second.sizes()) << run.grads[i].first;
      EXPECT_TRUE(AllFinite(grad)) << run.grads[i].first;
    }
  }
}

TEST(ModelsTest, ParametersAreNamedLikeTorch) {
  std::set<std::string> names;
  RunOrFail("mlp", ModelOptions{}, [&](const NamedTensors& params) {
    for (const auto& [name, tensor] : params) names.insert(name);
  });
  EXPECT_EQ(names, (std::set<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight",
                                          "fc3.bias"}));
}

TEST(ModelsTest, SameSeedIsBitIdentical) {
  for (const ModelInfo& info : BuiltinModels()) {
    SCOPED_TRACE(info.name);
    ModelOptions options;
    options.seed = 1234;
    ModelRun a = RunOrFail(info.name, options);
    ModelRun b = RunOrFail(info.name, options);
    EXPECT_EQ(a.losses, b.losses);
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t i = 0; i < a.grads.size(); ++i) {
      EXPECT_EQ(a.grads[i].first, b.grads[i].first);
      EXPECT_TRUE(at::equal(a.grads[i].second, b.grads[i].second)) << a.grads[i].first;
    }
  }
}

TEST(ModelsTest, DifferentSeedGivesDifferentGrads) {
  ModelOptions options;
  options.seed = 1;
  ModelRun a = RunOrFail("mlp", options);
  options.seed = 2;
  ModelRun b = RunOrFail("mlp", options);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  ASSERT_FALSE(a.grads.empty());
  EXPECT_FALSE(at::equal(a.grads[0].second, b.grads[0].second));
}

TEST(ModelsTest, SeveralStepsRecordOneLossEach) {
  ModelOptions options;
  options.steps = 4;
  ModelRun run = RunOrFail("mlp", options);
  ASSERT_EQ(run.losses.size(), 4u);
  for (double loss : run.losses) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(run.grads.size(), 6u);
}

TEST(ModelsTest, UnknownModelIsAnError) {
  ModelRun run;
  std::string err;
  EXPECT_FALSE(RunModel("foo", ModelOptions{}, nullptr, &run, &err));
  EXPECT_EQ(err,
            "unknown model 'foo'; `cautograd record --list` lists the "
            "models");
}

TEST(ModelsTest, OutOfRangeOptionsAreErrors) {
  struct Case {
    int batch;
    int steps;
    std::string message;
  };
  const std::vector<Case> cases = {
      {-1, 0, "batch must be between 1 and 4096, got -1"},
      {4097, 0, "batch must be between 1 and 4096, got 4097"},
      {0, 10001, "steps must be between 1 and 10000, got 10001"},
      {0, -3, "steps must be between 1 and 10000, got -3"},
  };
  for (const Case& c : cases) {
    ModelOptions options;
    options.batch = c.batch;
    options.steps = c.steps;
    ModelRun run;
    std::string err;
    bool observed = false;
    EXPECT_FALSE(RunModel(
        "mlp", options, [&](const NamedTensors&) { observed = true; }, &run, &err));
    EXPECT_EQ(err, c.message);
    EXPECT_FALSE(observed);
    EXPECT_TRUE(run.losses.empty());
  }
}

TEST(ModelsTest, FindModel) {
  const ModelInfo* mlp = FindModel("mlp");
  ASSERT_NE(mlp, nullptr);
  EXPECT_EQ(mlp->name, "mlp");
  EXPECT_EQ(mlp->default_batch, 8);
  EXPECT_EQ(mlp->default_steps, 1);
  const ModelInfo* dynamic = FindModel("dynamic");
  ASSERT_NE(dynamic, nullptr);
  EXPECT_EQ(dynamic->default_steps, 3);
  EXPECT_EQ(FindModel("foo"), nullptr);
  EXPECT_EQ(FindModel(""), nullptr);

  const std::set<std::string> expected = {"mlp",    "cnn",   "lstm",    "transformer", "embedding",
                                          "custom", "hooks", "dynamic", "doublegrad"};
  std::set<std::string> names;
  for (const ModelInfo& info : BuiltinModels()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate " << info.name;
    EXPECT_FALSE(info.description.empty()) << info.name;
    EXPECT_EQ(info.description.find('\n'), std::string::npos) << info.name;
    EXPECT_GT(info.default_batch, 0) << info.name;
    EXPECT_EQ(FindModel(info.name), &info);
  }
  EXPECT_EQ(names, expected);
}

// For a Linear layer the weight grad is a sum of one outer product per
// example, so its rank reveals the batch size of the step that produced it
// (with random inputs, the rank equals the batch; the tolerance sits well
// above float32 rounding).
int64_t Fc1WeightGradRank(const std::string& model, int steps) {
  ModelOptions options;
  options.batch = 1;
  options.steps = steps;
  ModelRun run = RunOrFail(model, options);
  for (const auto& [name, grad] : run.grads) {
    if (name != "fc1.weight") continue;
    at::Tensor singular = at::linalg_svdvals(grad.to(at::kDouble));
    double tolerance = 1e-4 * singular.max().item<double>();
    return singular.gt(tolerance).sum().item<int64_t>();
  }
  ADD_FAILURE() << model << " has no fc1.weight grad";
  return -1;
}

TEST(ModelsTest, DynamicChangesBatchSizeAcrossSteps) {
  // Batches 1, 3, 1: the grads come from the last step only, since each
  // step zeroes them first.
  EXPECT_EQ(Fc1WeightGradRank("dynamic", 1), 1);
  EXPECT_EQ(Fc1WeightGradRank("dynamic", 2), 3);
  EXPECT_EQ(Fc1WeightGradRank("dynamic", 3), 1);
  // The plain MLP keeps its batch, which shows the observation is real.
  EXPECT_EQ(Fc1WeightGradRank("mlp", 2), 1);
  EXPECT_EQ(RunOrFail("dynamic", ModelOptions{}).losses.size(), 3u);
}

TEST(ModelsTest, LeafHookClampsWeightGrad) {
  ModelRun run = RunOrFail("hooks", ModelOptions{});
  bool found = false;
  for (const auto& [name, grad] : run.grads) {
    if (name != "fc1.weight") continue;
    found = true;
    // Reaching the bound exactly shows the clamp engaged, not just that the
    // grads happened to be small.
    EXPECT_FLOAT_EQ(grad.abs().max().item<float>(), 0.01f);
  }
  EXPECT_TRUE(found);
}

TEST(ModelsTest, RunBackwardReplacesBackwardWithTheSameGrads) {
  ModelOptions options;
  options.steps = 3;
  options.seed = 11;
  ModelRun plain = RunOrFail("mlp", options);
  int calls = 0;
  options.run_backward = [&](const at::Tensor& loss) {
    ++calls;
    loss.backward({}, /*retain_graph=*/true);
  };
  ModelRun hooked = RunOrFail("mlp", options);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(hooked.grads.size(), plain.grads.size());
  for (size_t i = 0; i < plain.grads.size(); ++i)
    EXPECT_TRUE(at::equal(hooked.grads[i].second, plain.grads[i].second)) << plain.grads[i].first;
}

}  // namespace
}  // namespace cautograd
