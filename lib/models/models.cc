// Built-in models for `cautograd record`.
//
// Every model seeds torch with options.seed before building anything, draws a
// fresh batch with torch::randn/randint each step, and ends each step with a
// plain SGD update under torch::NoGradGuard.
//
// How grads are reset before each backward (GradReset below):
//   kNoneThenZero: step 1 sets every .grad to undefined, so AccumulateGrad
//                  assigns; later steps zero_() in place, so it accumulates
//                  into the existing buffer. Used by mlp, cnn, embedding,
//                  custom and dynamic.
//   kSetToNone:    every step sets .grad to undefined (zero_grad with
//                  set_to_none). Used by lstm, transformer, hooks and
//                  doublegrad.
//
// ModelRun::grads is cloned after the final step's backward and BEFORE its
// optimizer step, so it is exactly what that backward produced.
#include "lib/models/models.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/torch.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cautograd {
namespace {

constexpr int kMaxBatch = 4096;
constexpr int kMaxSteps = 10000;

struct RunSettings {
  int batch = 0;
  int steps = 0;
  std::function<void(const at::Tensor& loss)> run_backward;  // ModelOptions::run_backward
};

enum class GradReset { kNoneThenZero, kSetToNone };

NamedTensors NamedParameters(const torch::nn::Module& net) {
  NamedTensors params;
  for (const auto& item : net.named_parameters()) {
    params.emplace_back(item.key(), item.value());
  }
  return params;
}

void ResetGrads(const NamedTensors& params, GradReset reset, int step) {
  for (const auto& [name, p] : params) {
    if (reset == GradReset::kSetToNone || step == 0) {
      p.mutable_grad() = torch::Tensor();
    } else if (p.grad().defined()) {
      p.mutable_grad().zero_();
    }
  }
}

// The training loop every model shares; `loss_for_step` runs the forward
// pass (and anything before backward) and returns the scalar loss.
void Train(torch::nn::Module& net, const RunSettings& settings, GradReset reset, double learning_rate,
           const std::function<torch::Tensor(int step)>& loss_for_step,
           const ParameterObserver& observe_parameters, ModelRun* run) {
  net.train();
  const NamedTensors params = NamedParameters(net);
  if (observe_parameters) observe_parameters(params);
  for (int step = 0; step < settings.steps; ++step) {
    ResetGrads(params, reset, step);
    torch::Tensor loss = loss_for_step(step);
    if (settings.run_backward)
      settings.run_backward(loss);
    else
      loss.backward();
    run->losses.push_back(loss.item<double>());
    if (step + 1 == settings.steps) {
      for (const auto& [name, p] : params) {
        if (p.grad().defined()) run->grads.emplace_back(name, p.grad().clone());
      }
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, p] : params) {
      if (p.grad().defined()) p.sub_(p.grad() * learning_rate);
    }
  }
}

// --- mlp -------------------------------------------------------------------

struct MlpNet : torch::nn::Module {
  MlpNet(int64_t in, int64_t hidden, int64_t out)
      : fc1(register_module("fc1", torch::nn::Linear(in, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden))),
        fc3(register_module("fc3", torch::nn::Linear(hidden, out))) {}

  torch::Tensor forward(const torch::Tensor& x) { return fc3(torch::relu(fc2(torch::relu(fc1(x))))); }

  torch::nn::Linear fc1, fc2, fc3;
};

void RunMlp(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  MlpNet net(16, 32, 4);
  Train(
      net, s, GradReset::kNoneThenZero, 0.05,
      [&](int) {
        torch::Tensor x = torch::randn({s.batch, 16});
        torch::Tensor target = torch::randn({s.batch, 4});
        return torch::mse_loss(net.forward(x), target);
      },
      observe, run);
}

// --- cnn -------------------------------------------------------------------

struct CnnNet : torch::nn::Module {
  CnnNet()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(4))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 8, 3).padding(1)))),
        dropout(register_module("dropout", torch::nn::Dropout(0.25))),
        fc(register_module("fc", torch::nn::Linear(8 * 3 * 3, 10))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    // 1x12x12 -> 4x6x6 -> 8x3x3
    torch::Tensor h = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    h = torch::avg_pool2d(torch::relu(conv2(h)), 2);
    return fc(dropout(h.flatten(1)));
  }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::Dropout dropout;
  torch::nn::Linear fc;
};

void RunCnn(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  CnnNet net;
  Train(
      net, s, GradReset::kNoneThenZero, 0.05,
      [&](int) {
        torch::Tensor images = torch::randn({s.batch, 1, 12, 12});
        torch::Tensor labels = torch::randint(0, 10, {s.batch}, torch::kLong);
        return torch::cross_entropy_loss(net.forward(images), labels);
      },
      observe, run);
}

// --- lstm ------------------------------------------------------------------

constexpr int64_t kLstmSeqLen = 6;

struct LstmNet : torch::nn::Module {
  LstmNet()
      : lstm(register_module("lstm", torch::nn::LSTM(8, 16))),
        head(register_module("head", torch::nn::Linear(16, 3))) {}

  // x is (seq, batch, feature); classify from the last time step.
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = std::get<0>(lstm->forward(x));
    return head(out.select(0, out.size(0) - 1));
  }

  torch::nn::LSTM lstm;
  torch::nn::Linear head;
};

void RunLstm(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  LstmNet net;
  Train(
      net, s, GradReset::kSetToNone, 0.1,
      [&](int) {
        torch::Tensor x = torch::randn({kLstmSeqLen, s.batch, 8});
        torch::Tensor labels = torch::randint(0, 3, {s.batch}, torch::kLong);
        return torch::cross_entropy_loss(net.forward(x), labels);
      },
      observe, run);
}

// --- transformer -----------------------------------------------------------

constexpr int64_t kModelDim = 16;
constexpr int64_t kTransformerSeqLen = 5;

struct TransformerNet : torch::nn::Module {
  TransformerNet()
      : encoder(register_module("encoder", torch::nn::TransformerEncoderLayer(
                                               torch::nn::TransformerEncoderLayerOptions(kModelDim, 2)
                                                   .dim_feedforward(32)
                                                   .dropout(0.1)
                                                   .activation(torch::kGELU)))),
        head(register_module("head", torch::nn::Linear(kModelDim, 4))) {}

  // x is (seq, batch, d_model); mean-pool the sequence before the head.
  torch::Tensor forward(const torch::Tensor& x) { return head(encoder(x).mean(0)); }

  torch::nn::TransformerEncoderLayer encoder;
  torch::nn::Linear head;
};

void RunTransformer(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  TransformerNet net;
  Train(
      net, s, GradReset::kSetToNone, 0.05,
      [&](int) {
        torch::Tensor x = torch::randn({kTransformerSeqLen, s.batch, kModelDim});
        torch::Tensor labels = torch::randint(0, 4, {s.batch}, torch::kLong);
        return torch::cross_entropy_loss(net.forward(x), labels);
      },
      observe, run);
}

// --- embedding -------------------------------------------------------------

constexpr int64_t kVocab = 50;
constexpr int64_t kTokensPerExample = 6;

struct EmbeddingNet : torch::nn::Module {
  EmbeddingNet()
      : embed(register_module("embed", torch::nn::Embedding(kVocab, 8))),
        fc(register_module("fc", torch::nn::Linear(8, 5))) {}

  // Bag of embeddings: mean over the tokens of each example.
  torch::Tensor forward(const torch::Tensor& tokens) { return fc(embed(tokens).mean(1)); }

  torch::nn::Embedding embed;
  torch::nn::Linear fc;
};

void RunEmbedding(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  EmbeddingNet net;
  Train(
      net, s, GradReset::kNoneThenZero, 0.5,
      [&](int) {
        torch::Tensor tokens = torch::randint(0, kVocab, {s.batch, kTokensPerExample}, torch::kLong);
        torch::Tensor labels = torch::randint(0, 5, {s.batch}, torch::kLong);
        return torch::cross_entropy_loss(net.forward(tokens), labels);
      },
      observe, run);
}

// --- custom ----------------------------------------------------------------

// y = alpha * x * sigmoid(x). The input goes through save_for_backward and
// alpha through saved_data, so a trace shows both ways a custom Function can
// keep state for its backward.
struct ScaledSwish : torch::autograd::Function<ScaledSwish> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double alpha) {
    ctx->save_for_backward({x});
    ctx->saved_data["alpha"] = alpha;
    return alpha * x * torch::sigmoid(x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const double alpha = ctx->saved_data["alpha"].toDouble();
    const torch::Tensor sig = torch::sigmoid(x);
    torch::Tensor dx = grad_outputs[0] * alpha * (sig + x * sig * (1 - sig));
    return {dx, torch::Tensor()};  // alpha is not differentiable
  }
};

struct CustomNet : torch::nn::Module {
  CustomNet()
      : fc1(register_module("fc1", torch::nn::Linear(10, 16))),
        fc2(register_module("fc2", torch::nn::Linear(16, 1))) {}

  torch::Tensor forward(const torch::Tensor& x) { return fc2(ScaledSwish::apply(fc1(x), 1.5)); }

  torch::nn::Linear fc1, fc2;
};

void RunCustom(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  CustomNet net;
  Train(
      net, s, GradReset::kNoneThenZero, 0.05,
      [&](int) {
        torch::Tensor x = torch::randn({s.batch, 10});
        torch::Tensor target = torch::randn({s.batch, 1});
        return torch::mse_loss(net.forward(x), target);
      },
      observe, run);
}

// --- hooks -----------------------------------------------------------------

constexpr double kActivationGradScale = 0.5;
constexpr double kWeightGradClip = 0.01;

// Leaves the gradients alone: it exists so the trace holds a node that
// carries a post hook.
struct PassThroughPostHook : torch::autograd::FunctionPostHook {
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    return outputs;
  }
};

void RunHooks(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  MlpNet net(8, 16, 1);
  // Registered once: a hook on a leaf outlives the step, so registering it
  // per step would stack clamps.
  net.fc1->weight.register_hook(
      [](torch::Tensor grad) { return grad.clamp(-kWeightGradClip, kWeightGradClip); });
  Train(
      net, s, GradReset::kSetToNone, 0.05,
      [&](int) {
        torch::Tensor x = torch::randn({s.batch, 8});
        torch::Tensor target = torch::randn({s.batch, 1});
        torch::Tensor h1 = net.fc1(x);
        h1.register_hook([](torch::Tensor grad) { return grad * kActivationGradScale; });
        torch::Tensor a1 = torch::relu(h1);
        a1.retain_grad();
        torch::Tensor h2 = net.fc2(a1);
        h2.grad_fn()->add_post_hook(std::make_unique<PassThroughPostHook>());
        torch::Tensor out = net.fc3(torch::relu(h2));
        return torch::mse_loss(out, target);
      },
      observe, run);
}

// --- dynamic ---------------------------------------------------------------

void RunDynamic(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  MlpNet net(12, 24, 3);
  Train(
      net, s, GradReset::kNoneThenZero, 0.05,
      [&](int step) {
        // batch, batch+2, batch, ...: a ragged last batch in miniature.
        const int64_t batch = s.batch + (step % 2 == 1 ? 2 : 0);
        torch::Tensor x = torch::randn({batch, 12});
        torch::Tensor labels = torch::randint(0, 3, {batch}, torch::kLong);
        return torch::cross_entropy_loss(net.forward(x), labels);
      },
      observe, run);
}

// --- doublegrad ------------------------------------------------------------

constexpr double kPenaltyWeight = 0.1;

struct SmoothNet : torch::nn::Module {
  SmoothNet()
      : fc1(register_module("fc1", torch::nn::Linear(6, 16))),
        fc2(register_module("fc2", torch::nn::Linear(16, 1))) {}

  // tanh rather than relu so the penalty's second derivative is not zero.
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(fc1(x))); }

  torch::nn::Linear fc1, fc2;
};

void RunDoubleGrad(const RunSettings& s, const ParameterObserver& observe, ModelRun* run) {
  SmoothNet net;
  Train(
      net, s, GradReset::kSetToNone, 0.05,
      [&](int) {
        torch::Tensor x = torch::randn({s.batch, 6}).requires_grad_(true);
        torch::Tensor target = torch::randn({s.batch, 1});
        torch::Tensor out = net.forward(x);
        torch::Tensor task_loss = torch::mse_loss(out, target);
        torch::Tensor input_grad = torch::autograd::grad({out.sum()}, {x}, {}, /*retain_graph=*/true,
                                                         /*create_graph=*/true)[0];
        return task_loss + kPenaltyWeight * input_grad.pow(2).sum();
      },
      observe, run);
}

// --- table -----------------------------------------------------------------

using RunFn = void (*)(const RunSettings&, const ParameterObserver&, ModelRun*);

struct ModelEntry {
  ModelInfo info;
  RunFn run;
};

const std::vector<ModelEntry>& Entries() {
  static const auto* const kEntries = new std::vector<ModelEntry>{
      {{"mlp", "3-layer ReLU MLP, MSE loss; grads undefined on step 1, zeroed later", 8, 1}, RunMlp},
      {{"cnn",
        "Conv2d+BatchNorm2d, max and avg pooling, Dropout, Linear, cross "
        "entropy on 1x12x12 images",
        4, 1},
       RunCnn},
      {{"lstm", "1-layer LSTM over 6 time steps, Linear head, cross entropy", 4, 1}, RunLstm},
      {{"transformer",
        "TransformerEncoderLayer (d_model 16, 2 heads, GELU) over 5 tokens, "
        "Linear head",
        4, 1},
       RunTransformer},
      {{"embedding", "Embedding of int64 tokens, mean-pooled, Linear, cross entropy", 8, 1}, RunEmbedding},
      {{"custom",
        "MLP with a C++ custom autograd Function (alpha*x*sigmoid(x)) saving a "
        "tensor and a scalar",
        8, 1},
       RunCustom},
      {{"hooks",
        "MLP with a tensor hook, retain_grad, a clamping leaf hook and a node "
        "post hook",
        8, 1},
       RunHooks},
      {{"dynamic",
        "MLP whose batch size alternates batch, batch+2, batch, ... across "
        "steps",
        8, 3},
       RunDynamic},
      {{"doublegrad",
        "gradient penalty: autograd::grad with create_graph, then backward "
        "through it",
        8, 1},
       RunDoubleGrad},
  };
  return *kEntries;
}

const ModelEntry* FindEntry(const std::string& name) {
  for (const ModelEntry& entry : Entries()) {
    if (entry.info.name == name) return &entry;
  }
  return nullptr;
}

bool Fail(std::string* err, std::string message) {
  if (err != nullptr) *err = std::move(message);
  return false;
}

}  // namespace

const std::vector<ModelInfo>& BuiltinModels() {
  static const auto* const kModels = [] {
    auto* models = new std::vector<ModelInfo>;
    for (const ModelEntry& entry : Entries()) models->push_back(entry.info);
    return models;
  }();
  return *kModels;
}

const ModelInfo* FindModel(const std::string& name) {
  for (const ModelInfo& info : BuiltinModels()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

bool RunModel(const std::string& name, const ModelOptions& options,
              const ParameterObserver& observe_parameters, ModelRun* run, std::string* err) {
  const ModelEntry* entry = FindEntry(name);
  if (entry == nullptr) {
    return Fail(err, "unknown model '" + name + "'; `cautograd record --list` lists the models");
  }
  // 0 means "the model's default" (see ModelOptions); anything else must be
  // in range.
  RunSettings settings;
  settings.batch = options.batch == 0 ? entry->info.default_batch : options.batch;
  settings.steps = options.steps == 0 ? entry->info.default_steps : options.steps;
  settings.run_backward = options.run_backward;
  if (settings.batch < 1 || settings.batch > kMaxBatch) {
    return Fail(err, "batch must be between 1 and " + std::to_string(kMaxBatch) + ", got " +
                         std::to_string(options.batch));
  }
  if (settings.steps < 1 || settings.steps > kMaxSteps) {
    return Fail(err, "steps must be between 1 and " + std::to_string(kMaxSteps) + ", got " +
                         std::to_string(options.steps));
  }

  ModelRun local_run;
  ModelRun* out = run != nullptr ? run : &local_run;
  out->grads.clear();
  out->losses.clear();
  try {
    torch::manual_seed(options.seed);
    entry->run(settings, observe_parameters, out);
  } catch (const c10::Error& e) {
    out->grads.clear();
    return Fail(err, "model '" + name + "' failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    out->grads.clear();
    return Fail(err, "model '" + name + "' failed: " + e.what());
  }
  return true;
}

}  // namespace cautograd
