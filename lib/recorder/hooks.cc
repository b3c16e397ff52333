// The hooks a node carries, as the trace names them. Where each kind lives
// differs between libtorch versions (lib/torch_compat); what it is called
// in the trace does not.
#include <typeinfo>

#include <c10/util/Type.h>

#include "lib/recorder/call_recorder.h"
#include "lib/recorder/python_hooks.h"

namespace cautograd {
namespace rec {

namespace {

bool StartsWith(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

void AddPreHook(ta::FunctionPreHook& hook, compat::PreHookSlot slot, Node* n) {
  std::string type = c10::demangle(typeid(hook).name());
  std::vector<std::string> targets;
  if (compat::CppHookTargets(hook, type, &targets)) {
    // One holder carries every C++ hook of one variable.
    for (const std::string& target : targets) {
      bool retains =
          slot == compat::PreHookSlot::kRetainsGrad || target.find("retain_grad") != std::string::npos;
      n->hooks.push_back({retains ? Hook::Kind::kRetainGrad : Hook::Kind::kTensorPreHook, "cpp", target});
    }
    return;
  }
  if (StartsWith(type, "torch::autograd::PyFunction")) {
    // PyFunctionTensorPreHook: Python tensor hooks (register_hook); other
    // Python pre-hooks are hooks on the node itself. One entry per
    // registered callable, named by its module and qualified name where the
    // interpreter can be asked.
    bool tensor = slot == compat::PreHookSlot::kTensor || type.find("TensorPreHook") != std::string::npos;
    std::vector<std::string> names;
    if (!PythonPreHookNames(hook, &names)) names = {type};
    for (const std::string& name : names)
      n->hooks.push_back({tensor ? Hook::Kind::kTensorPreHook : Hook::Kind::kPreHook, "python", name});
    return;
  }
  Hook::Kind kind = slot == compat::PreHookSlot::kTensor        ? Hook::Kind::kTensorPreHook
                    : slot == compat::PreHookSlot::kRetainsGrad ? Hook::Kind::kRetainGrad
                                                                : Hook::Kind::kPreHook;
  n->hooks.push_back({kind, "cpp", type});
}

}  // namespace

void CallRecorder::AddHooks(ta::Node* fn, Node* n) {
  compat::ForEachPreHook(
      *fn, [&](ta::FunctionPreHook& hook, compat::PreHookSlot slot) { AddPreHook(hook, slot, n); });
  for (const auto& hook : fn->post_hooks()) {
    std::vector<std::string> names;
    if (PythonPostHookNames(*hook, &names)) {
      for (const std::string& name : names) n->hooks.push_back({Hook::Kind::kPostHook, "python", name});
      continue;
    }
    std::string type = c10::demangle(typeid(*hook).name());
    n->hooks.push_back(
        {Hook::Kind::kPostHook, StartsWith(type, "torch::autograd::PyFunction") ? "python" : "cpp", type});
  }
  compat::ForEachPostAccumulateGradHook(*fn, [&](const std::string& type, void* python_dict) {
    std::vector<std::string> names;
    if (python_dict && PythonDictNames(python_dict, &names)) {
      for (const std::string& name : names)
        n->hooks.push_back({Hook::Kind::kPostAccumulateGrad, "python", name});
      return;
    }
    n->hooks.push_back({Hook::Kind::kPostAccumulateGrad, python_dict ? "python" : "cpp", type});
  });
}

}  // namespace rec
}  // namespace cautograd
