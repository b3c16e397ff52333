#include "lib/recorder/python_hooks.h"

#include <dlfcn.h>

#include <cstddef>
#include <string>

#include <c10/util/Type.h>

namespace cautograd {

namespace {

using PyObject = void;
using PySsizeT = std::ptrdiff_t;

// libtorch's Python hooks (torch/csrc/autograd/python_hook.h, 1.13 and 2.x) keep
// their dict as the first member after the hook base class, which has no
// data of its own. Mirrored here so as not to need Python's headers.
struct PreHookLayout : torch::autograd::FunctionPreHook {
  PyObject* dict;
};
struct PostHookLayout : torch::autograd::FunctionPostHook {
  PyObject* dict;
};

// The slice of the CPython C API this needs, found at run time.
struct PythonApi {
  int (*is_initialized)() = nullptr;
  int (*gil_ensure)() = nullptr;
  void (*gil_release)(int) = nullptr;
  int (*dict_next)(PyObject*, PySsizeT*, PyObject**, PyObject**) = nullptr;
  PyObject* (*get_attr)(PyObject*, const char*) = nullptr;
  const char* (*as_utf8)(PyObject*) = nullptr;
  void (*dec_ref)(PyObject*) = nullptr;
  void (*err_clear)() = nullptr;

  bool ready() const {
    return is_initialized && gil_ensure && gil_release && dict_next && get_attr && as_utf8 && dec_ref &&
           err_clear && is_initialized();
  }
};

template <typename F>
void Find(const char* name, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

const PythonApi& Api() {
  static const PythonApi api = [] {
    PythonApi a;
    Find("Py_IsInitialized", &a.is_initialized);
    Find("PyGILState_Ensure", &a.gil_ensure);
    Find("PyGILState_Release", &a.gil_release);
    Find("PyDict_Next", &a.dict_next);
    Find("PyObject_GetAttrString", &a.get_attr);
    Find("PyUnicode_AsUTF8", &a.as_utf8);
    Find("Py_DecRef", &a.dec_ref);
    Find("PyErr_Clear", &a.err_clear);
    return a;
  }();
  return api;
}

std::string Attr(const PythonApi& api, PyObject* object, const char* name) {
  PyObject* value = api.get_attr(object, name);
  if (!value) {
    api.err_clear();
    return "";
  }
  const char* text = api.as_utf8(value);
  std::string out = text ? text : "";
  if (!text) api.err_clear();
  api.dec_ref(value);
  return out;
}

bool Names(PyObject* dict, std::vector<std::string>* names) {
  const PythonApi& api = Api();
  if (!dict || !api.ready()) return false;
  int gil = api.gil_ensure();
  PySsizeT pos = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (api.dict_next(dict, &pos, &key, &value)) {
    std::string module = Attr(api, value, "__module__");
    std::string qualname = Attr(api, value, "__qualname__");
    if (qualname.empty()) qualname = "<callable>";
    names->push_back(module.empty() ? qualname : module + "." + qualname);
  }
  api.gil_release(gil);
  return true;
}

bool IsPythonHook(const std::string& type) { return type.rfind("torch::autograd::PyFunction", 0) == 0; }

}  // namespace

bool PythonPreHookNames(torch::autograd::FunctionPreHook& hook, std::vector<std::string>* names) {
  if (!IsPythonHook(c10::demangle(typeid(hook).name()))) return false;
  return Names(static_cast<PreHookLayout&>(hook).dict, names);
}

bool PythonPostHookNames(torch::autograd::FunctionPostHook& hook, std::vector<std::string>* names) {
  if (!IsPythonHook(c10::demangle(typeid(hook).name()))) return false;
  return Names(static_cast<PostHookLayout&>(hook).dict, names);
}

bool PythonDictNames(void* dict, std::vector<std::string>* names) { return Names(dict, names); }

bool PythonInProcess() { return Api().is_initialized != nullptr; }

}  // namespace cautograd

namespace cautograd {

PythonGilScope::PythonGilScope() {
  const PythonApi& api = Api();
  if (!api.ready()) return;
  state_ = api.gil_ensure();
  held_ = true;
}

PythonGilScope::~PythonGilScope() {
  if (held_) Api().gil_release(state_);
}

void PythonGilScope::ClearError() {
  if (held_) Api().err_clear();
}

}  // namespace cautograd
