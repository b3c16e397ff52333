// What the recorder notes of ops and tensors while the program runs, and
// how those notes become the trace's Ops and TensorInfos after the call.
// Internal to lib/recorder.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/core/function_schema.h>
#include <ATen/core/jit_type.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/function.h>

#include "lib/bridge/names.h"
#include "lib/trace/trace.h"

namespace cautograd {
namespace rec {

namespace ta = torch::autograd;
using Clock = std::chrono::steady_clock;

constexpr const char* kEvaluatePrefix = "autograd::engine::evaluate_function: ";
constexpr const char* kGraphRoot = "torch::autograd::GraphRoot";
constexpr const char* kAccumulateGrad = "torch::autograd::AccumulateGrad";

// Thrown inside the recorder when it meets something it cannot represent;
// caught at the callback boundary, where the call it was recording is left
// out (and named), and the calls after it are recorded.
struct RecorderFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One line of what an exception says: libtorch's errors carry their C++
// stack trace, which is never shown to a user.
std::string OneLine(const std::exception& e);

// True while this thread runs recorder code, so that ops the recorder

// True while this thread runs recorder code, so that ops the recorder
// dispatches itself (copies off a device) are not recorded.
extern thread_local bool t_busy;

struct BusyGuard {
  BusyGuard() { t_busy = true; }
  ~BusyGuard() { t_busy = false; }
};

// True while this thread runs a dispatcher op the recorder records: only
// the outermost op is recorded, and the ops it calls cost a flag test.
extern thread_local bool t_in_op;

// How many calls this thread is running that the recorder cannot follow
// (Recorder::BeginUnrecordableCall): their ops are not looked at.
extern thread_local int t_unrecordable;

inline double Micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

std::string DtypeOf(const at::Tensor& t);

// Device::str() builds its text each time; most tensors are on the CPU.
inline std::string DeviceText(c10::Device device) {
  return device.is_cpu() ? std::string("cpu") : device.str();
}

// What the recorder needs of an operator, looked up once per operator.
struct OpInfo {
  std::string name;      // "aten::mm"
  std::string overload;  // "" or "Tensor"
  c10::FunctionSchema schema;
};

// For a dispatcher op, RecordFunction::name() is its schema's own name
// string, which lives as long as the operator is registered: its address
// identifies the operator without copying the schema on every op, as
// operator_schema() does. Other frames (named regions) are not cached:
// null for them.
const OpInfo* LookupOp(const at::RecordFunction& fn);

// Node::name() may demangle the node's type on every call; the recorder
// asks once per type and thread. Python custom Functions share one C++
// type, PyNode, whose name() is the Python class's: those are asked every
// time.
std::string NodeTypeName(const ta::Node& node);

// An op argument or result as the trace holds it; `type` is the schema's
// (null where it has none). Tensors become ids through `tensor_id`.
template <typename TensorId>
Arg ArgOfValue(const c10::IValue& v, const c10::Type* type, const TensorId& tensor_id) {
  using K = Arg::Kind;
  if (v.isNone()) return Arg::None();
  if (type) {
    if (auto* opt = type->castRaw<c10::OptionalType>())
      return ArgOfValue(v, opt->getElementType().get(), tensor_id);
    switch (type->kind()) {
      case c10::TypeKind::ScalarTypeType:
        if (v.isInt()) {
          const char* name = DtypeName(static_cast<c10::ScalarType>(v.toInt()));
          if (!*name) throw RecorderFailure("unsupported dtype argument");
          return Arg::Text(K::kDtype, name);
        }
        break;
      case c10::TypeKind::LayoutType:
        if (v.isInt()) return Arg::Text(K::kLayout, LayoutName(static_cast<c10::Layout>(v.toInt())));
        break;
      case c10::TypeKind::MemoryFormatType:
        if (v.isInt())
          return Arg::Text(K::kMemoryFormat, MemoryFormatName(static_cast<c10::MemoryFormat>(v.toInt())));
        break;
      case c10::TypeKind::SymIntType: {
        Arg a = ArgOfValue(v, nullptr, tensor_id);
        a.is_size = a.kind == K::kInt;
        return a;
      }
      case c10::TypeKind::ListType: {
        auto element = type->castRaw<c10::ListType>()->getElementType();
        Arg a = ArgOfValue(v, nullptr, tensor_id);
        a.is_size = a.kind == K::kIntList && element->kind() == c10::TypeKind::SymIntType;
        return a;
      }
      default:
        break;
    }
  }
  if (v.isTensor()) return Arg::Tensor(tensor_id(v.toTensor()));
  if (v.isTensorList() || v.isOptionalTensorList()) {
    Arg a;
    a.kind = K::kTensorList;
    for (const c10::IValue& item : v.toListRef()) {
      a.ints.push_back(item.isTensor() ? tensor_id(item.toTensor()) : -1);
    }
    return a;
  }
  if (v.isInt()) return Arg::Int(v.toInt());
  if (v.isSymInt()) {
    c10::SymInt s = v.toSymInt();
    if (s.is_symbolic()) return Arg::Text(K::kOpaque, "SymInt");
    Arg a = Arg::Int(s.expect_int());
    a.is_size = true;
    return a;
  }
  if (v.isDouble()) return Arg::Float(v.toDouble());
  if (v.isBool()) return Arg::Bool(v.toBool());
  if (v.isString()) return Arg::Text(K::kString, v.toStringRef());
  if (v.isDevice()) return Arg::Text(K::kDevice, DeviceText(v.toDevice()));
  if (v.isIntList()) {
    Arg a;
    a.kind = K::kIntList;
    a.ints = v.toIntVector();
    return a;
  }
  if (v.isDoubleList()) {
    Arg a;
    a.kind = K::kFloatList;
    a.floats = v.toDoubleVector();
    return a;
  }
  if (v.isBoolList()) {
    Arg a;
    a.kind = K::kBoolList;
    for (bool b : v.toBoolList()) a.bools.push_back(b);
    return a;
  }
  if (v.isList()) {
    Arg a;
    a.kind = K::kList;
    for (const c10::IValue& item : v.toListRef()) a.items.push_back(ArgOfValue(item, nullptr, tensor_id));
    return a;
  }
  if (v.isGenerator()) return Arg::Text(K::kOpaque, "Generator");
  return Arg::Text(K::kOpaque, v.tagKind());
}

using ParameterNames = std::unordered_map<const c10::TensorImpl*, std::string>;

// Moves on whenever a call ends or a recorder stops, in any Recorder:
// per-thread caches of "which call is this graph task" are valid only
// within one epoch.
extern std::atomic<uint64_t> g_calls_epoch;

// A tensor as the recorder notes it while the program runs: the trace's
// TensorInfo without its texts and arrays, which are made after the call.
struct TensorMeta {
  const c10::TensorImpl* impl = nullptr;  // only its address, the parameter-name key
  uint32_t dims_at = 0;                   // sizes, then strides if strided, in Deferred::dims
  uint32_t dim = 0;
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  c10::Device device{c10::kCPU};
  bool strided = true;
  c10::Layout layout = c10::kStrided;
  int64_t sparse_dim = -1;  // sparse COO only
  bool requires_grad = false;
  int64_t offset = 0;
  int64_t storage = -1;
  uint32_t roles = 0;
};

// An op argument or result as noted while the program runs. Tensors are
// ids at once (registering them is what must happen during the call);
// plain values are kept as they are, and become Args by the schema's types
// after the call; anything else is converted at once.
struct PendingArg {
  enum class Kind : uint8_t { kTensor, kTensorList, kNone, kInt, kDouble, kBool, kIntList, kConverted };
  Kind kind = Kind::kNone;
  // kTensorList, kIntList: a range of Deferred::ints; kConverted: an index
  // into Deferred::converted.
  uint32_t at = 0;
  uint32_t len = 0;
  int64_t i = 0;  // kTensor: the tensor id; kInt, kBool: the value
  double f = 0;   // kDouble
};

// An op as noted while the program runs: the trace's Op without its names.
struct PendingOp {
  const OpInfo* info = nullptr;
  int64_t node = -1;
  Op::Phase phase = Op::Phase::kEngine;
  int thread = 0;
  uint32_t args_at = 0, nargs = 0, outs_at = 0, nouts = 0;  // in Deferred::args
  double start_us = 0;
  double duration_us = 0;
};

// What a call leaves to be written into its trace once it has ended: in
// Finish for kept calls, before on_call for calls handed over. Work moved
// here is no work for the program's step.
struct Deferred {
  bool owed = false;  // not yet written into its call
  std::vector<PendingOp> ops;
  std::vector<PendingArg> args;  // ops' arguments and results
  std::vector<int64_t> ints;
  std::vector<Arg> converted;
  std::vector<TensorMeta> tensors;  // by tensor id
  std::vector<int64_t> dims;
  std::shared_ptr<const ParameterNames> names;  // from NameParameters

  // The Arg a noted argument stands for; `type` is the schema's.
  Arg ToArg(PendingArg& p, const c10::Type* type);

  int64_t Numel(const TensorMeta& m) const {
    int64_t n = 1;
    for (uint32_t d = 0; d < m.dim; ++d) n *= dims[m.dims_at + d];
    return n;
  }

  // Writes the ops' names and the tensors into `call`.
  void WriteInto(Call* call);
};

}  // namespace rec
}  // namespace cautograd
