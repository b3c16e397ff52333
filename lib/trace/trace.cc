#include "lib/trace/trace.h"

#include <cstdio>

namespace cautograd {

namespace {

struct RoleName {
  TensorRole role;
  const char* name;
};
constexpr RoleName kRoleNames[] = {
    {kRoleRootGrad, "root_grad"},   {kRoleSaved, "saved"},        {kRoleLeaf, "leaf"},
    {kRoleOldGrad, "old_grad"},     {kRoleOpOutput, "op_output"}, {kRoleFinalGrad, "final_grad"},
    {kRoleNodeInput, "node_input"},
};

struct DtypeEntry {
  const char* name;
  int size;
  bool integral;
};
constexpr DtypeEntry kDtypes[] = {
    {"float32", 4, false},   {"float64", 8, false},     {"float16", 2, false}, {"bfloat16", 2, false},
    {"complex64", 8, false}, {"complex128", 16, false}, {"int64", 8, true},    {"int32", 4, true},
    {"int16", 2, true},      {"int8", 1, true},         {"uint8", 1, true},    {"bool", 1, true},
};

const DtypeEntry* FindDtype(const std::string& name) {
  for (const DtypeEntry& entry : kDtypes)
    if (name == entry.name) return &entry;
  return nullptr;
}

}  // namespace

const char* ValuesModeName(ValuesMode mode) {
  switch (mode) {
    case ValuesMode::kNone:
      return "none";
    case ValuesMode::kInts:
      return "ints";
    case ValuesMode::kInputs:
      return "inputs";
    case ValuesMode::kAll:
      return "all";
  }
  return "?";
}

bool ParseValuesMode(const std::string& text, ValuesMode* mode) {
  for (ValuesMode m : {ValuesMode::kNone, ValuesMode::kInts, ValuesMode::kInputs, ValuesMode::kAll}) {
    if (text == ValuesModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

int64_t Value::nbytes() const { return numel * DtypeSize(dtype); }

std::vector<std::string> RoleNames(uint32_t roles) {
  std::vector<std::string> names;
  for (const RoleName& r : kRoleNames)
    if (roles & r.role) names.push_back(r.name);
  return names;
}

bool ParseRole(const std::string& name, uint32_t* role) {
  for (const RoleName& r : kRoleNames) {
    if (name == r.name) {
      *role = r.role;
      return true;
    }
  }
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const char* HookKindName(Hook::Kind kind) {
  switch (kind) {
    case Hook::Kind::kTensorPreHook:
      return "tensor_pre_hook";
    case Hook::Kind::kRetainGrad:
      return "retain_grad";
    case Hook::Kind::kPreHook:
      return "pre_hook";
    case Hook::Kind::kPostHook:
      return "post_hook";
    case Hook::Kind::kPostAccumulateGrad:
      return "post_accumulate_grad_hook";
  }
  return "?";
}

bool ParseHookKind(const std::string& name, Hook::Kind* kind) {
  for (Hook::Kind k : {Hook::Kind::kTensorPreHook, Hook::Kind::kRetainGrad, Hook::Kind::kPreHook,
                       Hook::Kind::kPostHook, Hook::Kind::kPostAccumulateGrad}) {
    if (name == HookKindName(k)) {
      *kind = k;
      return true;
    }
  }
  return false;
}

const char* CaSizeOriginName(CaSize::Origin origin) {
  return origin == CaSize::Origin::kEdge ? "edge" : "state";
}

const char* CaRanName(CompiledAutogradKey::Ran ran) {
  switch (ran) {
    case CompiledAutogradKey::Ran::kNone:
      return "none";
    case CompiledAutogradKey::Ran::kEager:
      return "eager";
    case CompiledAutogradKey::Ran::kCompiled:
      return "compiled";
  }
  return "?";
}

bool ParseCaRan(const std::string& name, CompiledAutogradKey::Ran* ran) {
  for (auto r : {CompiledAutogradKey::Ran::kEager, CompiledAutogradKey::Ran::kCompiled}) {
    if (name == CaRanName(r)) {
      *ran = r;
      return true;
    }
  }
  return false;
}

int64_t CompiledAutogradKey::num_sizes() const {
  int64_t n = 0;
  for (const CaNode& node : nodes) n += int64_t(node.sizes.size());
  return n;
}

const char* PhaseName(Op::Phase phase) {
  switch (phase) {
    case Op::Phase::kEngine:
      return "engine";
    case Op::Phase::kPreHook:
      return "pre_hook";
    case Op::Phase::kNode:
      return "node";
    case Op::Phase::kPostNode:
      return "post_node";
  }
  return "?";
}

bool ParsePhase(const std::string& name, Op::Phase* phase) {
  for (Op::Phase p : {Op::Phase::kEngine, Op::Phase::kPreHook, Op::Phase::kNode, Op::Phase::kPostNode}) {
    if (name == PhaseName(p)) {
      *phase = p;
      return true;
    }
  }
  return false;
}

const char* const kLayoutNames[] = {"sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr",
                                    "sparse_bsc", "mkldnn",     "jagged",     nullptr};

bool IsKnownLayout(const std::string& layout) {
  for (const char* const* name = kLayoutNames; *name; ++name)
    if (layout == *name) return true;
  return false;
}

int DtypeSize(const std::string& dtype) {
  const DtypeEntry* entry = FindDtype(dtype);
  return entry ? entry->size : 0;
}

bool IsIntegralDtype(const std::string& dtype) {
  const DtypeEntry* entry = FindDtype(dtype);
  return entry && entry->integral;
}

}  // namespace cautograd

namespace cautograd {

namespace {

std::string FloatText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <typename T, typename F>
std::string ListText(const std::vector<T>& items, F text) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += text(items[i]);
  }
  return out + "]";
}

}  // namespace

std::string OpLabel(const Op& op) { return op.overload.empty() ? op.name : op.name + "." + op.overload; }

const char* ValueWhenName(Value::When when) {
  switch (when) {
    case Value::When::kFirstUse:
      return "first_use";
    case Value::When::kAfterOp:
      return "after_op";
    case Value::When::kEnd:
      return "end";
  }
  return "?";
}

std::string ArgText(const Arg& arg) {
  using K = Arg::Kind;
  switch (arg.kind) {
    case K::kNone:
      return "None";
    case K::kTensor:
      return arg.tensor < 0 ? "undefined" : "t" + std::to_string(arg.tensor);
    case K::kTensorList:
      return ListText(
          arg.ints, [](int64_t id) { return id < 0 ? std::string("undefined") : "t" + std::to_string(id); });
    case K::kInt:
      return std::to_string(arg.i);
    case K::kFloat:
      return FloatText(arg.f);
    case K::kBool:
      return arg.b ? "True" : "False";
    case K::kString:
      return "'" + arg.text + "'";
    case K::kIntList:
      return ListText(arg.ints, [](int64_t v) { return std::to_string(v); });
    case K::kFloatList:
      return ListText(arg.floats, FloatText);
    case K::kBoolList:
      return ListText(arg.bools, [](bool b) { return std::string(b ? "True" : "False"); });
    case K::kDtype:
    case K::kDevice:
    case K::kLayout:
    case K::kMemoryFormat:
      return arg.text;
    case K::kList:
      return ListText(arg.items, ArgText);
    case K::kOpaque:
      return "<" + arg.text + ">";
  }
  return "?";
}

}  // namespace cautograd
