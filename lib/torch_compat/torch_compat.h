// The one place that knows which libtorch the recorder is built against.
//
// The recorder and its engine hook call these; nothing else in cautograd
// tests version macros. What differs, and since when:
//   - how a Node is held: std::shared_ptr until 2.12, c10::intrusive_ptr
//     from 2.13 (Tensor::grad_fn(), Edge::function, the engine's graph root);
//   - where hooks live: 1.13 keeps tensor hooks and retain_grad among a
//     node's pre_hooks() (one CppFunctionPreHook per variable for C++
//     hooks); 2.x has tensor_pre_hooks(), retains_grad_hooks() and, on
//     AccumulateGrad, post-accumulate-grad hooks;
//   - how an input's shape is read: public in 2.x, private in 1.13;
//   - compiled autograd's key walk: 2.4+ only (ca_walk.h, the one other
//     file here).
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Functions.h>
#include <c10/util/Type.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/cpp_hook.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/variable.h>

#define CAUTOGRAD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace cautograd {
namespace compat {

namespace ta = torch::autograd;

#if CAUTOGRAD_TORCH_AT_LEAST(2, 13)
using NodePtr = c10::intrusive_ptr<ta::Node>;
using WeakNodePtr = c10::weak_intrusive_ptr<ta::Node>;
#else
using NodePtr = std::shared_ptr<ta::Node>;
using WeakNodePtr = std::weak_ptr<ta::Node>;
#endif

// An owning pointer to a node that is alive (held elsewhere), and a new node.
inline NodePtr SharedFrom(ta::Node* node) {
#if CAUTOGRAD_TORCH_AT_LEAST(2, 13)
  return c10::intrusive_ptr<ta::Node>::reclaim_copy(node);
#else
  return node->shared_from_this();
#endif
}

template <typename T, typename... Args>
NodePtr MakeNode(Args&&... args) {
#if CAUTOGRAD_TORCH_AT_LEAST(2, 13)
  return c10::make_intrusive<T>(std::forward<Args>(args)...);
#else
  return std::make_shared<T>(std::forward<Args>(args)...);
#endif
}

// Where a pre-hook sits, which is what it hooks. The engine runs tensor
// hooks, then retain_grad's, then the node's own pre-hooks.
enum class PreHookSlot { kTensor, kRetainsGrad, kNode };

// Calls f(hook, slot) for every pre-hook the engine will run before `fn`.
// In 1.13 tensor hooks and retain_grad share pre_hooks() and are told apart
// by type (PreHookSlot::kNode there means "the caller must look").
template <typename F>
void ForEachPreHook(ta::Node& fn, const F& f) {
#if CAUTOGRAD_TORCH_AT_LEAST(2, 0)
  // AccumulateGrad's tensor_pre_hooks() are its variable's hooks.
  for (const auto& hook : fn.tensor_pre_hooks())
    if (hook) f(*hook, PreHookSlot::kTensor);
  for (const auto& [output, hook] : fn.retains_grad_hooks())
    if (hook) f(*hook, PreHookSlot::kRetainsGrad);
  for (const auto& hook : fn.pre_hooks())
    if (hook) f(*hook, PreHookSlot::kNode);
#else
  for (const auto& hook : fn.pre_hooks())
    if (hook) f(*hook, PreHookSlot::kNode);
  // A leaf's tensor hooks live on the variable; AccumulateGrad runs them
  // inside its apply.
  if (auto* acc = dynamic_cast<ta::AccumulateGrad*>(&fn))
    for (const auto& hook : ta::impl::hooks(acc->variable))
      if (hook) f(*hook, PreHookSlot::kNode);
#endif
}

// The C++ callables inside libtorch's holder of C++ tensor hooks, by the
// demangled name of each one's target type (retain_grad's is a lambda
// inside VariableHooks::retain_grad, which its name shows). False when
// `hook`, whose demangled type is `type`, is no such holder. The holders'
// typeinfo is not exported by libtorch, hence the test by name.
inline bool CppHookTargets(ta::FunctionPreHook& hook, const std::string& type,
                           std::vector<std::string>* targets) {
  targets->clear();
#if CAUTOGRAD_TORCH_AT_LEAST(2, 0)
  if (type == "torch::autograd::CppFunctionTensorPreHook") {
    // Removed hooks leave empty slots.
    for (const auto& f : *static_cast<ta::CppFunctionTensorPreHook&>(hook).hooks_)
      if (f) targets->push_back(c10::demangle(f.target_type().name()));
    return true;
  }
  if (type == "torch::autograd::CppFunctionSingleTensorPreHook") {
    const auto& f = static_cast<ta::CppFunctionSingleTensorPreHook&>(hook).hook_;
    if (f) targets->push_back(c10::demangle(f.target_type().name()));
    return true;
  }
#else
  if (type == "torch::autograd::CppFunctionPreHook") {
    for (const auto& f : *static_cast<ta::CppFunctionPreHook&>(hook).hooks_)
      if (f) targets->push_back(c10::demangle(f.target_type().name()));
    return true;
  }
#endif
  return false;
}

// Calls f(type, python_dict) for the post-accumulate-grad hooks of `fn`
// (register_post_accumulate_grad_hook; only AccumulateGrad has them, and
// only 2.x). `python_dict` is the dict of callables of a Python holder,
// null for a C++ one.
template <typename F>
void ForEachPostAccumulateGradHook(ta::Node& fn, const F& f) {
#if CAUTOGRAD_TORCH_AT_LEAST(2, 1)
  const auto& hook = fn.tensor_post_acc_grad_hooks();
  if (!hook) return;
  std::string type = c10::demangle(typeid(*hook).name());
  // PyFunctionTensorPostAccGradHooks keeps its dict as the first member
  // after a base class with no data (torch/csrc/autograd/python_hook.h).
  struct PythonLayout : ta::PostAccumulateGradHook {
    void* dict;
  };
  bool python = type == "torch::autograd::PyFunctionTensorPostAccGradHooks";
  f(type, python ? static_cast<PythonLayout&>(*hook).dict : nullptr);
#else
  (void)fn;
  (void)f;
#endif
}

// The shape an input's metadata holds. Run with RecordFunction off.
inline std::vector<int64_t> MetadataShape(const ta::InputMetadata& meta) {
#if CAUTOGRAD_TORCH_AT_LEAST(2, 0)
  if (!meta.is_nested_tensor()) {
    std::vector<int64_t> shape;
    bool concrete = true;
    for (const c10::SymInt& size : meta.shape_as_dim_vector()) {
      auto known = size.maybe_as_int();
      if (!known) {
        concrete = false;
        break;
      }
      shape.push_back(*known);
    }
    if (concrete) return shape;
  }
#else
  // 1.13 keeps the shape private but says it in the message it builds for a
  // gradient of the wrong shape; reading it there costs no memory, where
  // materializing zeros of the shape would allocate it whole.
  static const at::Tensor* probe = new at::Tensor(at::empty({}));  // never freed: used until exit
  std::string text = meta.incompatible_shape_error_message(0, *probe).str();
  const std::string marker = "compatible with [";
  size_t at = text.rfind(marker);
  if (at != std::string::npos) {
    std::vector<int64_t> shape;
    const char* p = text.c_str() + at + marker.size();
    while (*p && *p != ']') {
      char* end = nullptr;
      long long v = std::strtoll(p, &end, 10);
      if (end == p) break;
      shape.push_back(int64_t(v));
      p = end;
      while (*p == ',' || *p == ' ') ++p;
    }
    if (*p == ']') return shape;
  }
#endif
  return meta.zeros_like().sizes().vec();  // symbolic, nested, or an unexpected message: the slow way
}

// Compiled autograd runs a backward call through one function that Python
// hands to Engine::set_compiled_autograd (2.x; before 2.4 there is no such
// entry point and nothing to wrap). WrapCompiledAutograd(fn, before, after)
// returns the function to hand libtorch instead: it calls before() with
// what fn gets (the GraphRoot, the graph task, autograd.grad's output
// edges), then fn, then after() (also when fn throws). One fn per process,
// as in libtorch.
using CompiledCallStarts = void (*)(const NodePtr& root, const void* graph_task, const ta::edge_list& outputs);
#if CAUTOGRAD_TORCH_AT_LEAST(2, 4)
namespace internal {
inline std::atomic<ta::Engine::compiled_autograd_fn> compiled_fn{nullptr};
inline std::atomic<CompiledCallStarts> compiled_before{nullptr};
inline std::atomic<void (*)()> compiled_after{nullptr};
inline ta::variable_list CompiledAutogradWrapper(const NodePtr& root, const ta::GraphTask& task,
                                                 bool accumulate_grad, const ta::edge_list& outputs) {
  struct After {
    ~After() {
      if (auto f = compiled_after.load()) f();
    }
  };
  if (auto f = compiled_before.load()) f(root, &task, outputs);
  After after;
  return compiled_fn.load()(root, task, accumulate_grad, outputs);
}
}  // namespace internal

inline void* WrapCompiledAutograd(void* fn, CompiledCallStarts before, void (*after)()) {
  auto wrapper = &internal::CompiledAutogradWrapper;
  if (!fn || fn == reinterpret_cast<void*>(wrapper)) return fn;
  internal::compiled_before = before;
  internal::compiled_after = after;
  internal::compiled_fn = reinterpret_cast<ta::Engine::compiled_autograd_fn>(fn);
  return reinterpret_cast<void*>(wrapper);
}
#else
inline void* WrapCompiledAutograd(void* fn, CompiledCallStarts, void (*)()) { return fn; }
#endif

}  // namespace compat
}  // namespace cautograd
