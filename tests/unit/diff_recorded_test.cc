// The diff engine on calls the recorder captured from real libtorch backward
// passes: a small two-layer step and variants that each differ from it in
// one known way, as a pull request would change a model.
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lib/diff/diff.h"
#include "lib/diff/render.h"
#include "lib/recorder/recorder.h"

namespace cautograd {
namespace {

struct Variant {
  int64_t batch = 2;
  bool extra_layer = false;  // an identity Linear + ReLU between the layers: new nodes, the same values
  bool hook = false;         // a tensor hook on the hidden activation that multiplies by 1
  bool float64 = false;
};

// Every row of the batch is the same row, so gradients do not depend on the
// batch size: each variant differs only where it means to.
Trace RecordStep(const Variant& v) {
  torch::manual_seed(0);
  torch::nn::Linear first(8, 16), last(16, 4), extra(16, 16);
  const torch::Tensor row = torch::randn({1, 8}), target_row = torch::randn({1, 4});
  {
    torch::NoGradGuard no_grad;
    extra->weight.copy_(torch::eye(16));
    extra->bias.zero_();
  }
  const auto dtype = v.float64 ? torch::kFloat64 : torch::kFloat32;
  for (torch::nn::Linear* layer : {&first, &last, &extra}) (*layer)->to(dtype);
  RecorderOptions options;
  options.values = ValuesMode::kAll;
  Recorder recorder(options);
  std::vector<std::pair<std::string, at::Tensor>> names = {{"first.weight", first->weight},
                                                           {"first.bias", first->bias},
                                                           {"last.weight", last->weight},
                                                           {"last.bias", last->bias}};
  if (v.extra_layer) {
    names.emplace_back("extra.weight", extra->weight);
    names.emplace_back("extra.bias", extra->bias);
  }
  recorder.NameParameters(names);
  torch::Tensor x = row.expand({v.batch, 8}).to(dtype).contiguous();
  torch::Tensor y = target_row.expand({v.batch, 4}).to(dtype).contiguous();
  torch::Tensor hidden = torch::relu(first(x));
  if (v.extra_layer) hidden = torch::relu(extra(hidden));
  if (v.hook) hidden.register_hook([](const torch::Tensor& g) { return g * 1; });
  torch::mse_loss(last(hidden), y).backward();
  Trace trace = recorder.Finish();
  EXPECT_EQ(trace.calls.size(), 1u);
  return trace;
}

TraceDiff DiffWithBase(const Variant& v) {
  TraceDiff diff;
  std::string err;
  EXPECT_TRUE(DiffTraces(RecordStep(Variant()), RecordStep(v), DiffOptions(), &diff, &err)) << err;
  return diff;
}

std::string Texts(const TraceDiff& diff) {
  std::string out;
  for (const Difference& d : diff.differences) out += DifferenceText(d) + "\n";
  return out;
}

TEST(DiffRecorded, TwoRecordingsOfOneStepHaveNoDifference) {
  const TraceDiff diff = DiffWithBase(Variant());
  EXPECT_TRUE(diff.differences.empty()) << Texts(diff);
  ASSERT_EQ(diff.calls.size(), 1u);
  EXPECT_GT(diff.calls[0].values_compared, 10);
  EXPECT_EQ(diff.calls[0].nodes_matched, diff.calls[0].nodes_a);
}

TEST(DiffRecorded, ALayerAddedIsItsNodesAddedAndNothingElseInTheGraph) {
  const TraceDiff diff = DiffWithBase({2, true, false, false});
  const auto graph = diff.InGroup(DiffGroup::kGraph);
  std::multiset<std::string> added;
  for (const Difference* d : graph) {
    EXPECT_EQ(d->kind, "node_added") << DifferenceText(*d);
    added.insert(d->node_b.type + (d->node_b.leaf.empty() ? "" : " " + d->node_b.leaf));
  }
  EXPECT_EQ(added, (std::multiset<std::string>{"AddmmBackward0", "ReluBackward0", "TBackward0",
                                               "torch::autograd::AccumulateGrad extra.bias",
                                               "torch::autograd::AccumulateGrad extra.weight"}))
      << Texts(diff);
  EXPECT_TRUE(diff.InGroup(DiffGroup::kNumerics).empty()) << Texts(diff);  // the new layer is the identity
  EXPECT_FALSE(diff.InGroup(DiffGroup::kGuards).empty());
}

TEST(DiffRecorded, ABatchSizeIsGuardsSizesAndOpShapesOnly) {
  const TraceDiff diff = DiffWithBase({4, false, false, false});
  EXPECT_TRUE(diff.InGroup(DiffGroup::kGraph).empty()) << Texts(diff);
  EXPECT_TRUE(diff.InGroup(DiffGroup::kNumerics).empty()) << Texts(diff);
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  for (const Difference* d : guards) {
    EXPECT_EQ(d->kind, "size") << DifferenceText(*d);
    EXPECT_EQ(d->changes[0].old_value, "2");
    EXPECT_EQ(d->changes[0].new_value, "4");
  }
  EXPECT_FALSE(diff.InGroup(DiffGroup::kOps).empty());
}

TEST(DiffRecorded, AHookIsOneHookAddedWhereItRuns) {
  const TraceDiff diff = DiffWithBase({2, false, true, false});
  const auto graph = diff.InGroup(DiffGroup::kGraph);
  ASSERT_EQ(graph.size(), 1u) << Texts(diff);
  EXPECT_EQ(graph[0]->kind, "hook_added");
  EXPECT_EQ(graph[0]->node_b.type, "ReluBackward0");
  EXPECT_EQ(graph[0]->changes[0].what, "tensor_pre_hook");
  EXPECT_TRUE(diff.InGroup(DiffGroup::kNumerics).empty()) << Texts(diff);
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_EQ(guards.size(), 1u);
  EXPECT_EQ(guards[0]->kind, "hooks");
}

TEST(DiffRecorded, ADtypeIsAGuardsDtypeAndTheValuesStillAgree) {
  const TraceDiff diff = DiffWithBase({2, false, false, true});
  EXPECT_TRUE(diff.InGroup(DiffGroup::kGraph).empty()) << Texts(diff);
  EXPECT_TRUE(diff.InGroup(DiffGroup::kNumerics).empty()) << Texts(diff);
  EXPECT_GT(diff.calls[0].values_compared, 10);
  const auto guards = diff.InGroup(DiffGroup::kGuards);
  ASSERT_FALSE(guards.empty());
  for (const Difference* d : guards) {
    EXPECT_EQ(d->kind, "tensor");
    EXPECT_EQ(d->changes[0].what, "dtype");
  }
}

}  // namespace
}  // namespace cautograd
