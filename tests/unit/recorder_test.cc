#include "lib/recorder/recorder.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/torch.h>

#include "lib/models/models.h"
#include "lib/trace/guards.h"
#include "lib/trace/trace_io.h"

namespace cautograd {
namespace {

const Node* FindNode(const Call& call, const std::string& type) {
  for (const Node& n : call.nodes)
    if (n.type == type) return &n;
  return nullptr;
}

// The recorder's central promise: the recorded program computes exactly
// what it computes without the recorder.
TEST(Recorder, GradientsAreBitIdenticalForEveryModel) {
  for (const ModelInfo& model : BuiltinModels()) {
    for (ValuesMode values : {ValuesMode::kNone, ValuesMode::kAll}) {
      ModelOptions options;
      options.seed = 3;
      ModelRun plain, recorded;
      std::string err;
      ASSERT_TRUE(RunModel(model.name, options, nullptr, &plain, &err)) << err;
      RecorderOptions ropts;
      ropts.values = values;
      Recorder recorder(ropts);
      ASSERT_TRUE(recorder.active());
      ASSERT_TRUE(RunModel(
          model.name, options, [&](const NamedTensors& named) { recorder.NameParameters(named); }, &recorded,
          &err))
          << err;
      Trace trace = recorder.Finish();
      EXPECT_EQ(recorder.error(), "") << model.name;
      EXPECT_FALSE(trace.calls.empty()) << model.name;
      ASSERT_EQ(plain.grads.size(), recorded.grads.size()) << model.name;
      for (size_t i = 0; i < plain.grads.size(); ++i) {
        EXPECT_TRUE(plain.grads[i].second.equal(recorded.grads[i].second))
            << model.name << " " << plain.grads[i].first << " values=" << ValuesModeName(values);
      }
      EXPECT_EQ(plain.losses, recorded.losses) << model.name;
      // Every trace the recorder writes is one its reader accepts.
      Trace back;
      EXPECT_TRUE(ParseTrace(SerializeTrace(trace), model.name, &back, &err)) << err;
    }
  }
}

TEST(Recorder, CapturesGraphOpsLeavesAndRoles) {
  torch::manual_seed(0);
  torch::Tensor w = torch::randn({2, 3}, torch::requires_grad());
  torch::Tensor x = torch::randn({2, 3});
  Recorder recorder;
  recorder.NameParameters({{"w", w}});
  torch::Tensor loss = (w * x).sum();
  loss.backward();
  Trace trace = recorder.Finish();
  ASSERT_EQ(trace.calls.size(), 1u);
  const Call& call = trace.calls[0];
  EXPECT_EQ(call.api, "backward");
  EXPECT_FALSE(call.create_graph);

  const Node* sum = FindNode(call, "SumBackward0");
  const Node* mul = FindNode(call, "MulBackward0");
  const Node* acc = FindNode(call, "torch::autograd::AccumulateGrad");
  ASSERT_TRUE(sum && mul && acc);
  EXPECT_EQ(call.roots, std::vector<int64_t>{sum->id});
  ASSERT_EQ(sum->next.size(), 1u);
  EXPECT_EQ(sum->next[0].node, mul->id);
  ASSERT_EQ(mul->next.size(), 2u);
  EXPECT_EQ(mul->next[0].node, acc->id);
  EXPECT_EQ(mul->next[1].node, -1);  // x does not require grad
  EXPECT_EQ(mul->inputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(sum->exec_order, 0);
  EXPECT_EQ(acc->exec_order, 2);

  ASSERT_TRUE(acc->leaf.has_value());
  EXPECT_EQ(acc->leaf->name, "w");
  EXPECT_FALSE(acc->leaf->grad_defined_before);
  ASSERT_GE(acc->leaf->grad_after, 0);
  EXPECT_TRUE(call.tensors[size_t(acc->leaf->grad_after)].roles & kRoleFinalGrad);
  EXPECT_EQ(call.tensors[size_t(acc->leaf->tensor)].name, "w");

  // MulBackward0 computes grad * x: its op reads the root grad's expansion
  // and the saved x.
  bool saw_mul = false;
  for (const Op& op : call.ops) {
    if (op.name != "aten::mul" || op.node != mul->id) continue;
    saw_mul = true;
    EXPECT_EQ(op.phase, Op::Phase::kNode);
    ASSERT_EQ(op.args.size(), 2u);
    const TensorInfo& saved = call.tensors[size_t(op.args[1].tensor)];
    EXPECT_TRUE(saved.roles & kRoleSaved);
    EXPECT_EQ(saved.shape, (std::vector<int64_t>{2, 3}));
  }
  EXPECT_TRUE(saw_mul);
  EXPECT_TRUE(call.tensors[size_t(sum->grads_in[0])].roles & kRoleRootGrad);
  // Only outermost ops: expand's nested as_strided is not there.
  for (const Op& op : call.ops) EXPECT_NE(op.name, "aten::as_strided");
}

TEST(Recorder, AccumulatingIntoAnExistingGradIsVisible) {
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  Recorder recorder;
  (w * 2).sum().backward();
  (w * 3).sum().backward();
  Trace trace = recorder.Finish();
  ASSERT_EQ(trace.calls.size(), 2u);
  const Node* first = FindNode(trace.calls[0], "torch::autograd::AccumulateGrad");
  const Node* second = FindNode(trace.calls[1], "torch::autograd::AccumulateGrad");
  ASSERT_TRUE(first && second);
  EXPECT_FALSE(first->leaf->grad_defined_before);
  EXPECT_TRUE(second->leaf->grad_defined_before);
  EXPECT_GE(second->leaf->grad_before, 0);
  // In-place accumulation: the grad after is the grad before, written.
  EXPECT_EQ(second->leaf->grad_after, second->leaf->grad_before);
  EXPECT_TRUE(w.grad().equal(torch::full({3}, 5.0)));
  // Guards see the difference: .grad undefined, then defined.
  Guards g0 = ComputeGuards(trace.calls[0]), g1 = ComputeGuards(trace.calls[1]);
  auto old_grad_defined = [](const Guards& g) {
    for (const GuardTensor& t : g.tensors)
      if (t.role == "old_grad") return t.defined;
    return false;
  };
  EXPECT_FALSE(old_grad_defined(g0));
  EXPECT_TRUE(old_grad_defined(g1));
}

TEST(Recorder, SeveralRootsAndGradApi) {
  torch::Tensor a = torch::randn({4}, torch::requires_grad());
  torch::Tensor b = torch::randn({4}, torch::requires_grad());
  Recorder recorder;
  torch::Tensor y1 = (a * b).sum(), y2 = (a + b).sum();
  torch::autograd::backward({y1, y2});
  auto grads = torch::autograd::grad({(a * a).sum()}, {a});
  Trace trace = recorder.Finish();
  ASSERT_EQ(trace.calls.size(), 2u);
  EXPECT_EQ(trace.calls[0].roots.size(), 2u);
  EXPECT_EQ(trace.calls[1].api, "grad");
  // grad() does not accumulate into leaves: no AccumulateGrad runs.
  for (const Node& n : trace.calls[1].nodes)
    if (n.leaf) {
      EXPECT_FALSE(n.executed);
    }
  EXPECT_TRUE(grads[0].allclose(2 * a));
}

TEST(Recorder, ValuesModesKeepWhatTheySay) {
  auto record = [](ValuesMode mode) {
    torch::manual_seed(1);
    torch::Tensor emb = torch::randn({10, 3}, torch::requires_grad());
    torch::Tensor idx = torch::tensor({1, 4, 4, 7}, torch::kLong);
    RecorderOptions options;
    options.values = mode;
    Recorder recorder(options);
    torch::embedding(emb, idx).pow(2).sum().backward();
    return recorder.Finish();
  };
  Trace none = record(ValuesMode::kNone);
  EXPECT_TRUE(none.calls[0].values.empty());
  Trace ints = record(ValuesMode::kInts);
  ASSERT_FALSE(ints.calls[0].values.empty());
  bool saw_indices = false;
  for (const Value& v : ints.calls[0].values) {
    EXPECT_TRUE(IsIntegralDtype(v.dtype)) << v.dtype;
    if (v.dtype == "int64" && v.numel == 4) {
      const int64_t* data = reinterpret_cast<const int64_t*>(v.data.data());
      EXPECT_EQ(std::vector<int64_t>(data, data + 4), (std::vector<int64_t>{1, 4, 4, 7}));
      saw_indices = true;
    }
  }
  EXPECT_TRUE(saw_indices);
  Trace all = record(ValuesMode::kAll);
  bool saw_final = false;
  for (const Value& v : all.calls[0].values) saw_final |= v.when == Value::When::kEnd;
  EXPECT_TRUE(saw_final);
  EXPECT_GT(all.calls[0].values.size(), ints.calls[0].values.size());
}

TEST(Recorder, CallFilterAndSecondRecorder) {
  RecorderOptions options;
  std::string err;
  ASSERT_TRUE(CallFilter::Parse("1,3", &options.calls, &err));
  Recorder recorder(options);
  Recorder second;
  EXPECT_FALSE(second.active());
  EXPECT_NE(second.error().find("already active"), std::string::npos);
  // Call i works on a leaf of i + 1 elements, so each call tells its index.
  for (int i = 0; i < 5; ++i) (torch::ones({i + 1}, torch::requires_grad()) * 2).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 5);
  Trace trace = recorder.Finish();
  ASSERT_EQ(trace.calls.size(), 2u);
  auto leaf_size = [](const Call& call) {
    for (const Node& n : call.nodes)
      if (n.leaf) return n.leaf->shape.at(0);
    return int64_t(-1);
  };
  EXPECT_EQ(leaf_size(trace.calls[0]), 2);
  EXPECT_EQ(leaf_size(trace.calls[1]), 4);
  EXPECT_EQ(trace.calls[1].index, 1);  // renumbered within the trace
}

TEST(Recorder, HookKindsAreClassified) {
  torch::Tensor w = torch::randn({3}, torch::requires_grad());
  torch::Tensor h = w * 2;
  h.retain_grad();
  torch::Tensor g = h.exp();
  g.register_hook([](torch::Tensor grad) { return grad * 2; });
  w.register_hook([](torch::Tensor grad) { return grad; });
  Recorder recorder;
  g.sum().backward();
  Trace trace = recorder.Finish();
  std::map<std::string, int> kinds;
  for (const Node& n : trace.calls[0].nodes)
    for (const Hook& hook : n.hooks) kinds[HookKindName(hook.kind)] += 1;
  EXPECT_EQ(kinds["retain_grad"], 1);
  EXPECT_EQ(kinds["tensor_pre_hook"], 2);
  EXPECT_TRUE(h.grad().defined());
}

TEST(Recorder, NothingIsRecordedAfterFinish) {
  torch::Tensor w = torch::ones({2}, torch::requires_grad());
  Recorder recorder;
  (w * 2).sum().backward();
  Trace trace = recorder.Finish();
  (w * 2).sum().backward();
  EXPECT_EQ(trace.calls.size(), 1u);
  EXPECT_TRUE(recorder.Finish().calls.empty());
}

// The trace text of `call` with `guards` in it: equal texts, equal guards.
std::string WithGuards(const Call& call, const Guards& guards) {
  Trace t;
  t.calls.push_back(call);
  t.calls[0].guards = guards;
  return SerializeTrace(t);
}

// Guards are filled after the steps for kept calls, and before on_call for
// calls handed over: either way they are the guards of the call recorded.
TEST(Recorder, GuardsAreFilledWhetherCallsAreKeptOrHandedOver) {
  ModelOptions options;
  options.steps = 3;
  std::string err;
  Trace kept;
  {
    Recorder recorder;
    ASSERT_TRUE(RunModel("mlp", options, nullptr, nullptr, &err)) << err;
    kept = recorder.Finish();
  }
  std::vector<Call> handed;
  {
    RecorderOptions ropts;
    ropts.keep_calls = false;
    ropts.on_call = [&](const Call& call) { handed.push_back(call); };
    Recorder recorder(ropts);
    ASSERT_TRUE(RunModel("mlp", options, nullptr, nullptr, &err)) << err;
    EXPECT_TRUE(recorder.Finish().calls.empty());
  }
  ASSERT_EQ(kept.calls.size(), 3u);
  ASSERT_EQ(handed.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    for (const Call* call : {&kept.calls[i], &handed[i]}) {
      EXPECT_FALSE(call->guards.nodes.empty());
      EXPECT_EQ(WithGuards(*call, call->guards), WithGuards(*call, ComputeGuards(*call)));
    }
    EXPECT_EQ(WithGuards(kept.calls[i], kept.calls[i].guards), WithGuards(kept.calls[i], handed[i].guards));
  }
  // The root's input is the scalar loss's gradient: shape [] is a shape.
  const Node& root = kept.calls[0].nodes.at(size_t(kept.calls[0].roots.at(0)));
  ASSERT_EQ(root.inputs.size(), 1u);
  EXPECT_TRUE(root.inputs[0].shape.empty());
}

// Recorders one after another each see only their own calls, though the
// engine may reuse the addresses of graph tasks between them.
TEST(Recorder, RecordersOneAfterAnotherRecordTheirOwnCalls) {
  for (int i = 0; i < 4; ++i) {
    Recorder recorder;
    ASSERT_TRUE(recorder.active());
    (torch::ones({i + 1}, torch::requires_grad()) * 3).sum().backward();
    Trace trace = recorder.Finish();
    ASSERT_EQ(trace.calls.size(), 1u) << i;
    const Node* leaf = FindNode(trace.calls[0], "torch::autograd::AccumulateGrad");
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(leaf->leaf->shape, std::vector<int64_t>{i + 1});
  }
}

// In a C++ program the recorder puts in an engine that announces each
// call's roots, so a graph built before recording started is recorded
// whole, root included, and libtorch's own engine is back after Finish.
TEST(Recorder, GraphBuiltBeforeRecordingIsRecordedWhole) {
  namespace ta = torch::autograd;
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  torch::Tensor loss = (w * 2).exp().sum();
  torch::Tensor expected = 2 * (w * 2).exp().detach();
  {
    Recorder recorder;
    EXPECT_NE(&ta::Engine::get_default_engine(), &ta::Engine::get_base_engine());
    loss.backward();
    Trace trace = recorder.Finish();
    EXPECT_EQ(&ta::Engine::get_default_engine(), &ta::Engine::get_base_engine());
    EXPECT_EQ(recorder.error(), "");
    ASSERT_EQ(trace.calls.size(), 1u);
    const Call& call = trace.calls[0];
    ASSERT_EQ(call.roots.size(), 1u);
    EXPECT_EQ(call.nodes.at(size_t(call.roots[0])).type, "SumBackward0");
    std::vector<std::string> executed;
    for (const Node& n : call.nodes)
      if (n.executed) executed.push_back(n.type);
    EXPECT_EQ(executed.size(), 4u);  // Sum, Exp, Mul, AccumulateGrad
  }
  EXPECT_TRUE(w.grad().equal(expected));
}

// Python puts its own engine in as libtorch's default; a program may too.
// A call that then comes unannounced, with its forward pass unwatched, is
// counted and not recorded; from then on the recorder watches forward ops
// to find roots, and records the calls after it.
TEST(Recorder, CallsAfterTheDefaultEngineIsReplacedAreRecorded) {
  namespace ta = torch::autograd;
  Recorder recorder;
  ta::set_default_engine_stub(&ta::Engine::get_base_engine);
  for (int i = 0; i < 3; ++i) (torch::ones({i + 1}, torch::requires_grad()) * 2).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 3);
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  ASSERT_EQ(trace.calls.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const Node* leaf = FindNode(trace.calls[k], "torch::autograd::AccumulateGrad");
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(leaf->leaf->shape, std::vector<int64_t>{int64_t(k) + 2});
  }
  EXPECT_EQ(&ta::Engine::get_default_engine(), &ta::Engine::get_base_engine());
}

// 3 exp(x), by a backward call of its own.
at::Tensor GradInsideKernel(const at::Tensor& x) {
  torch::AutoGradMode grad_mode(true);
  torch::Tensor leaf = x.detach().requires_grad_(true);
  return torch::autograd::grad({(leaf.exp() * 3).sum()}, {leaf})[0];
}

// x * 3 forward; Derived::Inner(x) * grad backward.
template <typename Derived>
struct TimesThree : public torch::autograd::Function<Derived> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x) {
    ctx->save_for_backward({x});
    return x * 3;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {grads[0] * Derived::Inner(ctx->get_saved_variables()[0])};
  }
};

// A backward call made from inside another's node (as checkpointing does)
// is a call of its own: each gets its index in the order they came, and
// each its own graph.
struct GradInside : public TimesThree<GradInside> {
  static at::Tensor Inner(const at::Tensor& x) { return GradInsideKernel(x); }
};

TEST(Recorder, ACallInsideAnotherIsRecordedAsItsOwn) {
  torch::Tensor w = torch::ones({4}, torch::requires_grad());
  RecorderOptions options;
  std::string err;
  ASSERT_TRUE(CallFilter::Parse("0,1,3", &options.calls, &err));
  Recorder recorder(options);
  for (int i = 0; i < 2; ++i) GradInside::apply(w * 2).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 4);
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  // Calls end inner first: 1 (inner of the first step), 0, then 3 (inner
  // of the second step); 2 was not chosen.
  ASSERT_EQ(trace.calls.size(), 3u);
  std::vector<std::string> roots;
  for (const Call& call : trace.calls) roots.push_back(call.nodes.at(size_t(call.roots.at(0))).type);
  EXPECT_EQ(roots, (std::vector<std::string>{"SumBackward0", "SumBackward0", "SumBackward0"}));
  auto has = [](const Call& call, const std::string& type) { return FindNode(call, type) != nullptr; };
  auto outer = [](const Call& call) {
    for (const Node& n : call.nodes)
      if (n.type.find("GradInside") != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has(trace.calls[0], "ExpBackward0"));
  EXPECT_FALSE(outer(trace.calls[0]));
  EXPECT_TRUE(outer(trace.calls[1]));
  EXPECT_FALSE(has(trace.calls[1], "ExpBackward0"));
  EXPECT_TRUE(has(trace.calls[2], "ExpBackward0"));
  EXPECT_FALSE(outer(trace.calls[2]));
  EXPECT_TRUE(w.grad().allclose(torch::full({4}, 2 * 2 * 3 * std::exp(2.0))));
}

// The inputs of a node that the engine never shows a gradient for (here
// split's unused outputs) still get their shapes, from the node's metadata.
TEST(Recorder, InputsWithoutGradientsHaveTheirShapes) {
  torch::Tensor x = torch::randn({5, 3}, torch::requires_grad());
  Recorder recorder;
  std::vector<torch::Tensor> parts = x.split(2);
  (parts[0] * parts[0]).sum().backward();
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  ASSERT_EQ(trace.calls.size(), 1u);
  const Node* split = FindNode(trace.calls[0], "SplitBackward0");
  ASSERT_NE(split, nullptr);
  ASSERT_EQ(split->inputs.size(), 3u);
  EXPECT_EQ(split->inputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(split->inputs[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(split->inputs[2].shape, (std::vector<int64_t>{1, 3}));
}

// A call the engine refuses before it makes a graph task (a gradient of
// the wrong shape) is not counted, as in Python, and does not use up
// --max-calls.
TEST(Recorder, ARefusedCallDoesNotUseUpMaxCalls) {
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  RecorderOptions options;
  options.calls.max_calls = 1;
  Recorder recorder(options);
  torch::Tensor out = w * 2;
  EXPECT_THROW(out.backward(torch::ones({4})), c10::Error);  // [4] is no gradient of [3]
  (w * 3).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 1);
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  ASSERT_EQ(trace.calls.size(), 1u);
  EXPECT_NE(FindNode(trace.calls[0], "SumBackward0"), nullptr);
}

// A call that throws (here a hook) never reaches the engine's end of call.
// It is not recorded, and the calls after it are, though the engine may
// give their graph tasks the same address.
TEST(Recorder, CallsAfterOneThatThrowsAreRecorded) {
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  Recorder recorder;
  torch::Tensor h = w * 2;
  h.register_hook([](torch::Tensor) -> torch::Tensor { throw std::runtime_error("hook failed"); });
  EXPECT_THROW(h.sum().backward(), std::exception);
  for (int i = 0; i < 3; ++i) (w * 3).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 4);
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  ASSERT_EQ(trace.calls.size(), 3u);
  for (const Call& call : trace.calls) EXPECT_NE(FindNode(call, "MulBackward1"), nullptr);
}

TORCH_LIBRARY(cautograd_test, m) { m.def("grad_inside(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL(cautograd_test, CPU, m) { m.impl("grad_inside", GradInsideKernel); }

// The same, through an op whose kernel makes the backward call.
struct OpWithGradInside : public TimesThree<OpWithGradInside> {
  static at::Tensor Inner(const at::Tensor& x) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("cautograd_test::grad_inside", "")
                         .typed<at::Tensor(const at::Tensor&)>();
    return op.call(x);
  }
};

// A backward call made inside a recorded op is a call of its own, not one
// of the op's nested ops.
TEST(Recorder, ACallInsideAnOpIsRecorded) {
  torch::Tensor w = torch::ones({4}, torch::requires_grad());
  Recorder recorder;
  OpWithGradInside::apply(w * 2).sum().backward();
  EXPECT_EQ(recorder.calls_seen(), 2);
  Trace trace = recorder.Finish();
  EXPECT_EQ(recorder.error(), "");
  ASSERT_EQ(trace.calls.size(), 2u);
  EXPECT_NE(FindNode(trace.calls[0], "ExpBackward0"), nullptr);  // the inner call ends first
  bool recorded_op = false;
  for (const Op& op : trace.calls[1].ops) recorded_op |= op.name == "cautograd_test::grad_inside";
  EXPECT_TRUE(recorded_op);
  EXPECT_TRUE(w.grad().allclose(torch::full({4}, 2 * 3 * std::exp(2.0))));
}

}  // namespace
}  // namespace cautograd
