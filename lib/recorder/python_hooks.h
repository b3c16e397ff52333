// Names of the Python callables behind a Python hook, for the trace.
//
// libtorch's Python hooks (PyFunctionTensorPreHook, PyFunctionPreHook,
// PyFunctionPostHook) each hold a Python dict of the registered callables.
// The recorder does not link Python: when it runs inside a Python process
// (the shim under /usr/bin/python3), it finds the interpreter's C API with
// dlsym and asks each callable for its __module__ and __qualname__, holding
// the GIL while it does. Anywhere else it finds nothing and says so.
#pragma once

#include <string>
#include <vector>

#include <torch/csrc/autograd/function_hook.h>

namespace cautograd {

// The "module.qualname" of every callable in a Python hook's dict, in the
// dict's order; false when `hook` is not a Python hook or no interpreter is
// running in this process.
bool PythonPreHookNames(torch::autograd::FunctionPreHook& hook, std::vector<std::string>* names);
bool PythonPostHookNames(torch::autograd::FunctionPostHook& hook, std::vector<std::string>* names);

// The same, for a Python hook's dict found by other means (lib/torch_compat).
bool PythonDictNames(void* dict, std::vector<std::string>* names);

// Holds the GIL for its lifetime where a Python interpreter is running in
// this process (libtorch's Python objects need it); does nothing elsewhere.
class PythonGilScope {
 public:
  PythonGilScope();
  ~PythonGilScope();
  PythonGilScope(const PythonGilScope&) = delete;
  PythonGilScope& operator=(const PythonGilScope&) = delete;
  // Drops the Python error a failed call into Python left set.
  void ClearError();

 private:
  bool held_ = false;
  int state_ = 0;
};

// Whether a Python interpreter is linked into this process (running or
// not yet started): Python's backward runs through its own engine.
bool PythonInProcess();

}  // namespace cautograd
