#include "lib/trace/guards.h"

#include <gtest/gtest.h>

#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

TEST(Guards, NodesInExecutionOrderWithHooks) {
  Guards g = ComputeGuards(SmallTrace().calls[0]);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].type, "SumBackward0");
  EXPECT_EQ(g.nodes[1].type, "MulBackward0");
  EXPECT_EQ(g.nodes[2].type, "torch::autograd::AccumulateGrad");
  EXPECT_EQ(g.nodes[2].num_hooks, 1);
  EXPECT_EQ(g.nodes[2].hook_kinds, std::vector<std::string>{"tensor_pre_hook"});
}

TEST(Guards, LiftsGradsSavedTensorsAndLeaves) {
  Guards g = ComputeGuards(SmallTrace().calls[0]);
  std::vector<std::string> lifted;
  for (const GuardTensor& t : g.tensors)
    lifted.push_back(std::to_string(t.node) + ":" + t.role + ":" + std::to_string(t.tensor));
  // The expanded grad (an op output) is a grad_in of MulBackward0 but not
  // a saved tensor; x is saved; the AccumulateGrad's .grad was undefined.
  EXPECT_EQ(lifted, (std::vector<std::string>{"0:grad_in:0", "1:grad_in:1", "1:saved:2", "2:grad_in:3",
                                              "2:leaf:4", "2:old_grad:-1"}));
  EXPECT_FALSE(g.tensors.back().defined);
  EXPECT_TRUE(g.tensors[4].requires_grad);
}

TEST(Guards, SizesAreSeparateFromScalars) {
  Guards g = ComputeGuards(SmallTrace().calls[0]);
  // expand's size argument is a size input; its `implicit` flag is a scalar.
  ASSERT_EQ(g.scalars.size(), 1u);
  EXPECT_EQ(g.scalars[0].arg, "implicit");
  EXPECT_EQ(g.scalars[0].value, "False");
  int arg_sizes = 0, tensor_sizes = 0;
  for (const GuardSize& s : g.sizes) {
    if (s.op >= 0) {
      ++arg_sizes;
      EXPECT_EQ(s.what, "size");
      EXPECT_EQ(s.value, s.dim == 0 ? 2 : 3);
    } else {
      ++tensor_sizes;
    }
  }
  EXPECT_EQ(arg_sizes, 2);
  // grad_in 1, saved 2, grad_in 3, leaf 4: two dims each; the scalar root grad has none.
  EXPECT_EQ(tensor_sizes, 8);
}

TEST(Guards, BatchChangeShowsOnlyInSizes) {
  Trace a = SmallTrace();
  Trace b = SmallTrace();
  for (TensorInfo& t : b.calls[0].tensors)
    if (t.shape.size() == 2) t.shape[0] = 5;
  Guards ga = ComputeGuards(a.calls[0]), gb = ComputeGuards(b.calls[0]);
  ASSERT_EQ(ga.sizes.size(), gb.sizes.size());
  int changed = 0;
  for (size_t i = 0; i < ga.sizes.size(); ++i) changed += ga.sizes[i].value != gb.sizes[i].value;
  EXPECT_EQ(changed, 4);
  ASSERT_EQ(ga.scalars.size(), gb.scalars.size());
  EXPECT_EQ(ga.scalars[0].value, gb.scalars[0].value);
}

}  // namespace
}  // namespace cautograd
