// Built-in models: small, realistic CPU training steps whose backward calls
// `cautograd record --model NAME` captures. Each model is deterministic for a
// given seed, so recording can be checked against an unrecorded run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace cautograd {

struct ModelInfo {
  std::string name;
  std::string description;  // one line, for `record --list`
  int default_batch = 0;
  int default_steps = 1;
};

struct ModelOptions {
  int steps = 0;  // 0: the model's default
  int batch = 0;  // 0: the model's default
  uint64_t seed = 0;
  // If set, each step calls it with the loss instead of loss.backward()
  // (cautograd bench times backward repeatedly on one graph). It must leave
  // every .grad as one backward would; the step goes on from there.
  std::function<void(const at::Tensor& loss)> run_backward;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct ModelRun {
  // Gradients of every named parameter after the last step's backward
  // (cloned, so the caller may compare them after the model is gone).
  NamedTensors grads;
  // Loss value of each step, in order.
  std::vector<double> losses;
};

// Called once, after the model is built and before the first step, with
// every parameter and its qualified name ("fc1.weight"). The recorder uses it
// to name leaves in the trace.
using ParameterObserver = std::function<void(const NamedTensors&)>;

const std::vector<ModelInfo>& BuiltinModels();
const ModelInfo* FindModel(const std::string& name);

// Runs `options.steps` training steps of model `name`. Returns false and
// fills *err on an unknown model or bad options; never prints or exits.
bool RunModel(const std::string& name, const ModelOptions& options,
              const ParameterObserver& observe_parameters, ModelRun* run, std::string* err);

}  // namespace cautograd
