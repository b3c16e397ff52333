#include "lib/recorder/recorder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <stdexcept>
#include <typeinfo>
#include <unordered_map>

#include <unistd.h>

#include <ATen/Functions.h>
#include <ATen/core/function_schema.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/jit_type.h>
#include <ATen/record_function.h>
#include <c10/util/Type.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/cpp_hook.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/graph_task.h>

#include "lib/bridge/names.h"
#include "lib/bridge/tensor_bytes.h"
#include "lib/recorder/flat_map.h"
#include "lib/recorder/python_hooks.h"
#include "lib/trace/guards.h"
#include "lib/trace/op_semantics.h"

namespace cautograd {
namespace ta = torch::autograd;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kEvaluatePrefix = "autograd::engine::evaluate_function: ";
constexpr const char* kGraphRoot = "torch::autograd::GraphRoot";
constexpr const char* kAccumulateGrad = "torch::autograd::AccumulateGrad";

// Thrown inside the recorder when it meets something it cannot represent;
// caught at the callback boundary, where it disables recording.
struct RecorderFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True while this thread runs recorder code, so that ops the recorder
// dispatches itself (copies off a device) are not recorded.
thread_local bool t_busy = false;

struct BusyGuard {
  BusyGuard() { t_busy = true; }
  ~BusyGuard() { t_busy = false; }
};

// True while this thread runs a dispatcher op the recorder records: only
// the outermost op is recorded, and the ops it calls cost a flag test.
thread_local bool t_in_op = false;

double Micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

std::string DtypeOf(const at::Tensor& t) {
  const char* name = DtypeName(t.scalar_type());
  if (!*name) throw RecorderFailure(std::string("unsupported dtype ") + c10::toString(t.scalar_type()));
  return name;
}

// Device::str() builds its text each time; most tensors are on the CPU.
std::string DeviceText(c10::Device device) { return device.is_cpu() ? std::string("cpu") : device.str(); }

std::string NowIso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// The stage an evaluate_function frame is in, which decides the phase of
// the ops it runs: tensor pre-hooks run before the node, output validation,
// post-hooks and gradient accumulation into the next input buffers after.
enum class Stage { kPre, kIn, kPost };

struct EvalFrame {
  int64_t node = -1;
  Stage stage = Stage::kPre;
  std::vector<int64_t> pending_ops;  // pre-hook ops, given their node once known
  // AccumulateGrad nodes the running one could be, with each leaf's .grad
  // before it ran; resolved when the node ends.
  struct Candidate {
    int64_t node;
    const c10::TensorImpl* grad;
    int64_t version;
  };
  std::vector<Candidate> candidates;
  std::vector<at::Tensor> candidate_inputs;  // the node's inputs, until resolved
};

struct ThreadFrames {
  int index = 0;  // small thread number for the trace
  std::vector<EvalFrame> evals;
};

// What the recorder needs of an operator, looked up once per operator.
struct OpInfo {
  std::string name;      // "aten::mm"
  std::string overload;  // "" or "Tensor"
  c10::FunctionSchema schema;
};

// For a dispatcher op, RecordFunction::name() is its schema's own name
// string, which lives as long as the operator is registered: its address
// identifies the operator without copying the schema on every op, as
// operator_schema() does. Other frames (named regions) are not cached.
const OpInfo* LookupOp(const at::RecordFunction& fn) {
  const char* key = fn.name();
  // Each thread keeps its own view of the shared cache, to ask without the
  // lock. OpInfos are never freed, so those views never dangle.
  thread_local std::unordered_map<const char*, const OpInfo*> local;
  auto hit = local.find(key);
  if (hit != local.end() && hit->second->name == key) return hit->second;
  static std::mutex mu;
  static std::unordered_map<const char*, const OpInfo*> cache;
  static std::vector<std::unique_ptr<OpInfo>> infos;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end() || it->second->name != key) {
    // Named regions have no schema and are not cached: their names may be
    // fresh strings every time.
    auto schema = fn.operator_schema();
    if (!schema) return nullptr;
    infos.push_back(
        std::make_unique<OpInfo>(OpInfo{schema->name(), schema->overload_name(), std::move(*schema)}));
    it = cache.insert_or_assign(key, infos.back().get()).first;
  }
  local[key] = it->second;
  return it->second;
}

// Node::name() may demangle the node's type on every call; the recorder
// asks once per type and thread. (A type seen from two libraries may have
// two type_infos: two entries with the same name.) Python custom Functions
// share one C++ type, PyNode, whose name() is the Python class's: those are
// asked every time.
std::string NodeTypeName(const ta::Node& node) {
  struct Entry {
    std::string name;
    bool per_object = false;
  };
  thread_local std::unordered_map<const std::type_info*, Entry> cache;
  const std::type_info* type = &typeid(node);
  auto it = cache.find(type);
  if (it == cache.end()) {
    bool py = c10::demangle(type->name()) == "torch::autograd::PyNode";
    it = cache.emplace(type, Entry{py ? std::string() : node.name(), py}).first;
  }
  return it->second.per_object ? node.name() : it->second.name;
}

// The shape an input's metadata holds. libtorch 1.13 keeps it private but
// says it in the message it builds for a gradient of the wrong shape;
// reading it there costs no memory, where materializing zeros of the shape
// would allocate it whole (a large weight's worth, for each such input of
// each call). Run with RecordFunction off.
std::vector<int64_t> MetadataShape(const ta::InputMetadata& meta) {
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
  return meta.zeros_like().sizes().vec();  // the message changed: the slow way
}

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

}  // namespace

using ParameterNames = std::unordered_map<const c10::TensorImpl*, std::string>;

// Moves on whenever a call ends or a recorder stops, in any Recorder:
// per-thread caches of "which call is this graph task" are valid only
// within one epoch.
std::atomic<uint64_t> g_calls_epoch{1};

// A tensor as the recorder notes it while the program runs: the trace's
// TensorInfo without its texts and arrays, which are made after the call.
struct TensorMeta {
  const c10::TensorImpl* impl = nullptr;  // only its address, the parameter-name key
  uint32_t dims_at = 0;                   // sizes, then strides if strided, in Deferred::dims
  uint32_t dim = 0;
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  c10::Device device{c10::kCPU};
  bool strided = true;
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
  Arg ToArg(PendingArg& p, const c10::Type* type) {
    using K = PendingArg::Kind;
    auto none = [](const at::Tensor&) -> int64_t { return -1; };  // plain values hold no tensor
    auto range = [&] { return std::vector<int64_t>(ints.begin() + p.at, ints.begin() + p.at + p.len); };
    switch (p.kind) {
      case K::kTensor:
        return Arg::Tensor(p.i);
      case K::kTensorList: {
        Arg a;
        a.kind = Arg::Kind::kTensorList;
        a.ints = range();
        return a;
      }
      case K::kNone:
        return Arg::None();
      case K::kInt:
        return ArgOfValue(c10::IValue(p.i), type, none);
      case K::kDouble:
        return ArgOfValue(c10::IValue(p.f), type, none);
      case K::kBool:
        return ArgOfValue(c10::IValue(p.i != 0), type, none);
      case K::kIntList:
        return ArgOfValue(c10::IValue(range()), type, none);
      case K::kConverted:
        return std::move(converted[p.at]);
    }
    return Arg::None();
  }

  int64_t Numel(const TensorMeta& m) const {
    int64_t n = 1;
    for (uint32_t d = 0; d < m.dim; ++d) n *= dims[m.dims_at + d];
    return n;
  }

  // Writes the ops' names and the tensors into `call`.
  void WriteInto(Call* call) {
    if (!owed) return;
    owed = false;
    call->ops.clear();
    call->ops.reserve(ops.size());
    for (size_t k = 0; k < ops.size(); ++k) {
      const PendingOp& p = ops[k];
      const c10::FunctionSchema& schema = p.info->schema;
      Op op;
      op.index = int64_t(k);
      op.name = p.info->name;
      op.overload = p.info->overload;
      op.node = p.node;
      op.phase = p.phase;
      op.thread = p.thread;
      op.start_us = p.start_us;
      op.duration_us = p.duration_us;
      op.args.reserve(p.nargs);
      op.arg_names.reserve(p.nargs);
      for (uint32_t j = 0; j < p.nargs; ++j) {
        // real_type: the schema's `type` says int for ScalarType, Layout, MemoryFormat.
        bool named = j < schema.arguments().size();
        op.args.push_back(
            ToArg(args[p.args_at + j], named ? schema.arguments()[j].real_type().get() : nullptr));
        op.arg_names.push_back(named ? schema.arguments()[j].name() : std::string());
      }
      op.outputs.reserve(p.nouts);
      for (uint32_t j = 0; j < p.nouts; ++j) {
        bool typed = j < schema.returns().size();
        op.outputs.push_back(
            ToArg(args[p.outs_at + j], typed ? schema.returns()[j].real_type().get() : nullptr));
      }
      call->ops.push_back(std::move(op));
    }
    call->tensors.clear();
    call->tensors.reserve(tensors.size());
    for (size_t id = 0; id < tensors.size(); ++id) {
      const TensorMeta& m = tensors[id];
      TensorInfo info;
      info.id = int64_t(id);
      auto sizes = dims.begin() + m.dims_at;
      info.shape.assign(sizes, sizes + m.dim);
      if (m.strided) {
        info.strides.assign(sizes + m.dim, sizes + 2 * m.dim);
        info.offset = m.offset;
        info.storage = m.storage;
      } else {
        // Sparse and other layouts have no strides; describe them as dense.
        info.strides.assign(info.shape.size(), 1);
        for (int64_t d = int64_t(info.shape.size()) - 2; d >= 0; --d)
          info.strides[size_t(d)] =
              info.strides[size_t(d) + 1] * std::max<int64_t>(info.shape[size_t(d) + 1], 1);
      }
      info.dtype = DtypeName(m.dtype);
      info.device = DeviceText(m.device);
      info.requires_grad = m.requires_grad;
      info.roles = m.roles;
      if (names) {
        auto name = names->find(m.impl);
        if (name != names->end()) info.name = name->second;
      }
      call->tensors.push_back(std::move(info));
    }
    for (Node& n : call->nodes)
      if (n.leaf && n.leaf->tensor >= 0) n.leaf->name = call->tensors[size_t(n.leaf->tensor)].name;
    ops.clear();
    args.clear();
    ints.clear();
    converted.clear();
    tensors.clear();
    dims.clear();
  }
};

struct CallSizes {
  size_t nodes = 0, ops = 0, args = 0, ints = 0, tensors = 0, storages = 0, values = 0, dims = 0;
};

// One backward call (one engine graph task) being recorded.
struct CallRecorder {
  const std::unordered_set<ta::Node*>* task = nullptr;
  bool graph_ready = false;
  // Finds the node a forward op created, by (sequence number, thread); set
  // by the Recorder, used for the one root the engine leaves out of the task.
  std::function<std::shared_ptr<ta::Node>(uint64_t, uint64_t)> forward_node;
  bool selected = false;
  bool done = false;      // Complete() ran: the call's data is final
  bool finished = false;  // the engine's final callback ran
  ValuesMode values = ValuesMode::kInts;
  std::mutex mu;
  Call call;
  Clock::time_point t0;

  FlatMap<const c10::TensorImpl*, int64_t, PointerHash> tensor_ids;
  std::vector<const c10::TensorImpl*> impls;  // by tensor id
  std::vector<c10::weak_intrusive_ptr<c10::TensorImpl>> held_tensors;
  FlatMap<const c10::StorageImpl*, int64_t, PointerHash> storage_ids;
  std::vector<c10::weak_intrusive_ptr<c10::StorageImpl>> held_storages;
  FlatMap<const ta::Node*, int64_t, PointerHash> node_ids;
  std::vector<ta::Node*> nodes;
  // Whether each node input's shape is known yet: node id -> first index.
  std::vector<size_t> first_input;
  std::vector<bool> shape_known;
  FlatMap<std::pair<uint64_t, uint64_t>, int64_t, PairHash> by_seq;  // (seq, thread) -> node
  std::unordered_map<uint64_t, ThreadFrames> threads;
  Deferred deferred;

  void Reserve(const CallSizes& n) {
    call.nodes.reserve(n.nodes);
    deferred.ops.reserve(n.ops);
    deferred.args.reserve(n.args);
    deferred.ints.reserve(n.ints);
    deferred.tensors.reserve(n.tensors);
    deferred.dims.reserve(n.dims);
    call.storages.reserve(n.storages);
    call.values.reserve(n.values);
    nodes.reserve(n.nodes);
    node_ids.reserve(n.nodes);
    impls.reserve(n.tensors);
    held_tensors.reserve(n.tensors);
    tensor_ids.reserve(n.tensors);
    held_storages.reserve(n.storages);
    storage_ids.reserve(n.storages);
  }

  bool WantValues(c10::ScalarType dtype) const {
    return values == ValuesMode::kAll || (values == ValuesMode::kInts && IsIntegralDtype(DtypeName(dtype)));
  }

  double Now() const { return Micros(t0, Clock::now()); }

  void Snapshot(const at::Tensor& t, int64_t id, Value::When when, int64_t op) {
    Value v;
    v.tensor = id;
    v.when = when;
    v.op = op;
    const TensorMeta& m = deferred.tensors[size_t(id)];
    v.dtype = DtypeName(m.dtype);
    v.numel = deferred.Numel(m);
    v.data = TensorBytes(t);
    call.values.push_back(std::move(v));
  }

  int64_t StorageId(const at::Tensor& t) {
    if (!t.has_storage()) return -1;
    const c10::Storage& storage = t.storage();
    const c10::StorageImpl* impl = storage.unsafeGetStorageImpl();
    int64_t nbytes = int64_t(storage.nbytes());
    if (const int64_t* known = storage_ids.Find(impl)) {
      StorageInfo& info = call.storages[size_t(*known)];
      info.nbytes = std::max(info.nbytes, nbytes);  // storages may grow
      return *known;
    }
    int64_t id = int64_t(call.storages.size());
    storage_ids.Insert(impl, id);
    held_storages.push_back(storage.getWeakStorageImpl());
    StorageInfo info;
    info.id = id;
    info.nbytes = nbytes;
    info.device = DeviceText(t.device());
    call.storages.push_back(std::move(info));
    return id;
  }

  // The id of a tensor, registering it on first sight. A weak reference
  // keeps its TensorImpl's memory from being reused for another tensor
  // during the call, so ids never collide, without touching use counts.
  int64_t Register(const at::Tensor& t, uint32_t role, bool snapshot_if_new) {
    if (!t.defined()) return -1;
    const c10::TensorImpl* impl = t.unsafeGetTensorImpl();
    if (const int64_t* known = tensor_ids.Find(impl)) {
      deferred.tensors[size_t(*known)].roles |= role;
      return *known;
    }
    c10::ScalarType dtype = t.scalar_type();
    if (!*DtypeName(dtype)) throw RecorderFailure(std::string("unsupported dtype ") + c10::toString(dtype));
    int64_t id = int64_t(deferred.tensors.size());
    tensor_ids.Insert(impl, id);
    impls.push_back(impl);
    held_tensors.push_back(c10::weak_intrusive_ptr<c10::TensorImpl>(t.getIntrusivePtr()));
    TensorMeta m;
    m.impl = impl;
    m.dims_at = uint32_t(deferred.dims.size());
    c10::IntArrayRef sizes = t.sizes();
    m.dim = uint32_t(sizes.size());
    deferred.dims.insert(deferred.dims.end(), sizes.begin(), sizes.end());
    m.strided = t.layout() == at::kStrided;
    if (m.strided) {
      c10::IntArrayRef strides = t.strides();
      deferred.dims.insert(deferred.dims.end(), strides.begin(), strides.end());
      m.offset = t.storage_offset();
      m.storage = StorageId(t);
    }
    m.dtype = dtype;
    m.device = t.device();
    m.requires_grad = t.requires_grad();
    m.roles = role;
    deferred.tensors.push_back(m);
    if (snapshot_if_new && WantValues(dtype)) Snapshot(t, id, Value::When::kFirstUse, -1);
    return id;
  }

  // Notes an op's argument or result, compactly (see PendingArg).
  PendingArg Note(const c10::IValue& v, const c10::Type* type, uint32_t role, bool snapshot) {
    using K = PendingArg::Kind;
    PendingArg p;
    if (v.isTensor()) {
      p.kind = K::kTensor;
      p.i = Register(v.toTensor(), role, snapshot);
    } else if (v.isTensorList() || v.isOptionalTensorList()) {
      p.kind = K::kTensorList;
      p.at = uint32_t(deferred.ints.size());
      for (const c10::IValue& item : v.toListRef())
        deferred.ints.push_back(item.isTensor() ? Register(item.toTensor(), role, snapshot) : -1);
      p.len = uint32_t(deferred.ints.size() - p.at);
    } else if (v.isNone()) {
      p.kind = K::kNone;
    } else if (v.isInt() && !NamesADtype(type)) {  // a dtype is checked at once
      p.kind = K::kInt;
      p.i = v.toInt();
    } else if (v.isDouble()) {
      p.kind = K::kDouble;
      p.f = v.toDouble();
    } else if (v.isBool()) {
      p.kind = K::kBool;
      p.i = v.toBool();
    } else if (v.isIntList()) {
      p.kind = K::kIntList;
      p.at = uint32_t(deferred.ints.size());
      for (int64_t x : v.toIntList()) deferred.ints.push_back(x);
      p.len = uint32_t(deferred.ints.size() - p.at);
    } else {
      p.kind = K::kConverted;
      p.at = uint32_t(deferred.converted.size());
      deferred.converted.push_back(
          ArgOfValue(v, type, [&](const at::Tensor& t) { return Register(t, role, snapshot); }));
    }
    return p;
  }

  static bool NamesADtype(const c10::Type* type) {
    if (type)
      if (auto* opt = type->castRaw<c10::OptionalType>()) type = opt->getElementType().get();
    return type && type->kind() == c10::TypeKind::ScalarTypeType;
  }

  // Calls f(id) for each tensor a noted argument holds.
  template <typename F>
  void ForEachNotedTensor(const PendingArg& p, const F& f) {
    using K = PendingArg::Kind;
    if (p.kind == K::kTensor && p.i >= 0) f(p.i);
    if (p.kind == K::kTensorList)
      for (uint32_t k = 0; k < p.len; ++k)
        if (deferred.ints[p.at + k] >= 0) f(deferred.ints[p.at + k]);
    if (p.kind == K::kConverted) ForEachTensor(deferred.converted[p.at], f);
  }

  // Every frame asks, nearly always from the thread that asked last.
  ThreadFrames& Frames(uint64_t thread) {
    if (last_frames && last_thread == thread) return *last_frames;
    auto it = threads.find(thread);
    if (it == threads.end()) {
      it = threads.emplace(thread, ThreadFrames()).first;
      it->second.index = int(threads.size()) - 1;
    }
    last_thread = thread;
    last_frames = &it->second;  // elements of an unordered_map stay put
    return it->second;
  }
  uint64_t last_thread = 0;
  ThreadFrames* last_frames = nullptr;

  int64_t AddNode(ta::Node* fn) {
    if (const int64_t* known = node_ids.Find(fn)) return *known;
    int64_t id = int64_t(nodes.size());
    node_ids.Insert(fn, id);
    nodes.push_back(fn);
    Node& n = call.nodes.emplace_back();  // nothing below adds nodes
    n.id = id;
    n.type = NodeTypeName(*fn);
    n.seq = fn->sequence_nr();
    n.seq_is_max = n.seq == UINT64_MAX;
    n.topo = fn->topological_nr();
    first_input.push_back(shape_known.size());
    shape_known.resize(shape_known.size() + fn->num_inputs(), false);
    n.inputs.reserve(fn->num_inputs());
    for (uint32_t i = 0; i < fn->num_inputs(); ++i) {
      const ta::InputMetadata& meta = fn->input_metadata(i);
      InputMeta& in = n.inputs.emplace_back();
      in.dtype = DtypeName(c10::typeMetaToScalarType(meta.dtype()));
      if (in.dtype.empty()) throw RecorderFailure("unsupported dtype in input metadata of " + n.type);
      in.device = DeviceText(meta.device());
    }
    AddHooks(fn, &n);
    if (auto* acc = dynamic_cast<ta::AccumulateGrad*>(fn)) {
      LeafInfo leaf;
      const at::Tensor& var = acc->variable;
      leaf.tensor = Register(var, kRoleLeaf, true);
      leaf.shape = var.sizes().vec();
      leaf.dtype = DtypeOf(var);
      leaf.requires_grad = var.requires_grad();
      const at::Tensor& grad = var.grad();
      leaf.grad_defined_before = grad.defined();
      leaf.grad_before = Register(grad, kRoleOldGrad, true);
      n.leaf = std::move(leaf);
    } else {
      by_seq.Insert({n.seq, fn->thread_id()}, id);
    }
    return id;
  }

  static void AddHooks(ta::Node* fn, Node* n) {
    for (const auto& hook : fn->pre_hooks()) AddPreHook(*hook, n);
    // A leaf's tensor hooks live on the variable, and AccumulateGrad runs
    // them inside its apply.
    if (auto* acc = dynamic_cast<ta::AccumulateGrad*>(fn))
      for (const auto& hook : ta::impl::hooks(acc->variable)) AddPreHook(*hook, n);
    for (const auto& hook : fn->post_hooks()) {
      std::vector<std::string> names;
      if (PythonPostHookNames(*hook, &names)) {
        for (const std::string& name : names) n->hooks.push_back({Hook::Kind::kPostHook, "python", name});
        continue;
      }
      std::string type = c10::demangle(typeid(*hook).name());
      bool python = type.find("torch::autograd::PyFunction") == 0;
      n->hooks.push_back({Hook::Kind::kPostHook, python ? "python" : "cpp", type});
    }
  }

  static void AddPreHook(ta::FunctionPreHook& hook, Node* n) {
    std::string type = c10::demangle(typeid(hook).name());
    // CppFunctionPreHook's typeinfo is not exported by libtorch, so tell it
    // by its dynamic type's name rather than by dynamic_cast.
    if (type == "torch::autograd::CppFunctionPreHook") {
      auto* cpp = static_cast<ta::CppFunctionPreHook*>(&hook);
      // One CppFunctionPreHook carries every C++ hook of one variable;
      // removed hooks leave empty slots. retain_grad's hook is a lambda
      // inside VariableHooks::retain_grad, which its type name shows.
      for (const auto& f : *cpp->hooks_) {
        if (!f) continue;
        std::string target = c10::demangle(f.target_type().name());
        Hook::Kind kind = target.find("retain_grad") != std::string::npos ? Hook::Kind::kRetainGrad
                                                                          : Hook::Kind::kTensorPreHook;
        n->hooks.push_back({kind, "cpp", target});
      }
    } else if (type.find("torch::autograd::PyFunction") == 0) {
      // PyFunctionTensorPreHook: Python tensor hooks (register_hook);
      // other Python pre-hooks are hooks on the node itself. One entry per
      // registered callable, named by its module and qualified name where
      // the interpreter can be asked.
      Hook::Kind kind =
          type.find("TensorPreHook") != std::string::npos ? Hook::Kind::kTensorPreHook : Hook::Kind::kPreHook;
      std::vector<std::string> names;
      if (!PythonPreHookNames(hook, &names)) names = {type};
      for (const std::string& name : names) n->hooks.push_back({kind, "python", name});
    } else {
      n->hooks.push_back({Hook::Kind::kPreHook, "cpp", type});
    }
  }

  // Gives every node of the graph task an id: roots first, then
  // depth-first along next edges, so ids do not depend on where the
  // allocator put the nodes. The engine's set of nodes in the graph leaves
  // out the node it starts from; with one root that is the root itself
  // (`root`, found through the forward op that made it), with several it is
  // a GraphRoot, and the roots are the nodes no other node points to.
  void InitGraph(const std::unordered_set<ta::Node*>& in_graph, ta::Node* root) {
    graph_ready = true;
    std::vector<ta::Node*> roots;
    if (root && !in_graph.count(root)) {
      roots.push_back(root);
    } else {
      std::unordered_set<const ta::Node*> pointed_to;
      for (ta::Node* fn : in_graph)
        for (const ta::Edge& e : fn->next_edges())
          if (e.function) pointed_to.insert(e.function.get());
      for (ta::Node* fn : in_graph)
        if (!pointed_to.count(fn)) roots.push_back(fn);
    }
    auto order = [](ta::Node* a, ta::Node* b) {
      if (a->sequence_nr() != b->sequence_nr()) return a->sequence_nr() > b->sequence_nr();
      return a->name() < b->name();
    };
    std::sort(roots.begin(), roots.end(), order);
    std::vector<ta::Node*> stack(roots.rbegin(), roots.rend());
    while (!stack.empty()) {
      ta::Node* fn = stack.back();
      stack.pop_back();
      if (node_ids.Contains(fn)) continue;
      AddNode(fn);
      const auto& edges = fn->next_edges();
      for (auto it = edges.rbegin(); it != edges.rend(); ++it)
        if (it->function && !node_ids.Contains(it->function.get())) stack.push_back(it->function.get());
    }
    for (ta::Node* fn : roots) call.roots.push_back(*node_ids.Find(fn));
    for (size_t id = 0; id < nodes.size(); ++id) {
      call.nodes[id].next.reserve(nodes[id]->next_edges().size());
      for (const ta::Edge& e : nodes[id]->next_edges()) {
        Edge edge;
        if (e.function) {
          edge.node = *node_ids.Find(e.function.get());
          edge.input = e.input_nr;
        }
        call.nodes[id].next.push_back(edge);
      }
    }
  }

  // Which AccumulateGrad node is starting: the engine reports them all with
  // the same name and sequence number, so match the incoming gradient's
  // metadata, and if that leaves several, see whose .grad changed at the end.
  std::vector<EvalFrame::Candidate> AccumulateCandidates(const at::Tensor& grad) {
    std::vector<EvalFrame::Candidate> out;
    for (size_t id = 0; id < nodes.size(); ++id) {
      const Node& n = call.nodes[id];
      if (!n.leaf || n.executed) continue;
      auto* acc = static_cast<ta::AccumulateGrad*>(nodes[id]);
      if (grad.defined()) {
        const ta::InputMetadata& meta = acc->input_metadata(0);
        if (meta.dtype() != grad.dtype() || meta.device() != grad.device() || !meta.is_same_shape(grad))
          continue;
      }
      const at::Tensor& g = acc->variable.grad();
      out.push_back(
          {int64_t(id), g.defined() ? g.unsafeGetTensorImpl() : nullptr, g.defined() ? g._version() : -1});
    }
    return out;
  }

  int64_t ResolveAccumulate(const std::vector<EvalFrame::Candidate>& candidates) {
    if (candidates.empty()) return -1;
    if (candidates.size() == 1) return candidates[0].node;
    for (const auto& c : candidates) {
      const at::Tensor& g = static_cast<ta::AccumulateGrad*>(nodes[size_t(c.node)])->variable.grad();
      const c10::TensorImpl* impl = g.defined() ? g.unsafeGetTensorImpl() : nullptr;
      if (impl != c.grad || (g.defined() && g._version() != c.version)) return c.node;
    }
    return candidates[0].node;
  }

  void NodeStarted(const at::RecordFunction& fn, EvalFrame* eval) {
    const char* name = fn.name();
    bool graph_root = std::strcmp(name, kGraphRoot) == 0;
    if (!graph_ready) {
      std::shared_ptr<ta::Node> root;
      if (!graph_root && forward_node) root = forward_node(uint64_t(fn.seqNr()), fn.forwardThreadId());
      InitGraph(*task, root.get());
    }
    if (graph_root) return;  // a dummy node the engine makes for several roots
    std::vector<at::Tensor> inputs;
    inputs.reserve(fn.inputs().size());
    for (const c10::IValue& v : fn.inputs()) inputs.push_back(v.isTensor() ? v.toTensor() : at::Tensor());
    int64_t id = -1;
    if (std::strcmp(name, kAccumulateGrad) == 0) {
      auto candidates = AccumulateCandidates(inputs.empty() ? at::Tensor() : inputs[0]);
      if (candidates.size() == 1)
        id = candidates[0].node;
      else if (eval)
        eval->candidates = std::move(candidates);
    } else {
      if (const int64_t* known = by_seq.Find({uint64_t(fn.seqNr()), fn.forwardThreadId()})) id = *known;
    }
    if (eval) {
      eval->stage = Stage::kIn;
      eval->node = id;
    }
    if (id < 0 && !(eval && !eval->candidates.empty()))
      throw RecorderFailure(std::string("cannot find node '") + name + "' (sequence number " +
                            std::to_string(fn.seqNr()) + ") in the graph");
    if (id >= 0)
      BeginNode(id, inputs, eval);
    else
      eval->candidate_inputs = std::move(inputs);
  }

  void BeginNode(int64_t id, const std::vector<at::Tensor>& inputs, EvalFrame* eval) {
    Node& n = call.nodes[size_t(id)];
    n.executed = true;
    n.exec_order = exec_count_++;
    n.start_us = Now();
    bool is_root = std::find(call.roots.begin(), call.roots.end(), id) != call.roots.end();
    uint32_t role = kRoleNodeInput | (is_root ? uint32_t(kRoleRootGrad) : 0u);
    n.grads_in.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
      n.grads_in.push_back(Register(inputs[i], role, true));
      if (i >= n.inputs.size() || !inputs[i].defined()) continue;
      std::vector<bool>::reference known = shape_known[first_input[size_t(id)] + i];
      if (!known && nodes[size_t(id)]->input_metadata(uint32_t(i)).is_same_shape(inputs[i])) {
        n.inputs[i].shape = inputs[i].sizes().vec();
        known = true;
      }
    }
    if (eval) {
      for (int64_t op : eval->pending_ops) deferred.ops[size_t(op)].node = id;
      eval->pending_ops.clear();
    }
  }

  void NodeEnded(EvalFrame* eval) {
    if (!eval || eval->stage != Stage::kIn) return;
    eval->stage = Stage::kPost;
    if (eval->node < 0 && !eval->candidates.empty()) {
      eval->node = ResolveAccumulate(eval->candidates);
      eval->candidates.clear();
      BeginNode(eval->node, eval->candidate_inputs, eval);
      eval->candidate_inputs.clear();
    }
    if (eval->node < 0) return;
    Node& n = call.nodes[size_t(eval->node)];
    n.duration_us = Now() - n.start_us;
    if (n.leaf) {
      const at::Tensor& g = static_cast<ta::AccumulateGrad*>(nodes[size_t(eval->node)])->variable.grad();
      n.leaf->grad_after = Register(g, kRoleFinalGrad, false);
    }
  }

  // Input shapes the engine never showed us (nodes that did not run, or got
  // undefined gradients) come from the metadata itself (MetadataShape).
  void FillMissingShapes() {
    at::DisableRecordFunctionGuard no_record;
    at::NoGradGuard no_grad;
    for (size_t id = 0; id < nodes.size(); ++id) {
      Node& n = call.nodes[id];
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (shape_known[first_input[id] + i]) continue;
        n.inputs[i].shape = MetadataShape(nodes[id]->input_metadata(uint32_t(i)));
      }
    }
  }

  void Complete() {
    FillMissingShapes();
    if (values == ValuesMode::kAll) {
      for (size_t id = 0; id < nodes.size(); ++id) {
        const Node& n = call.nodes[id];
        if (!n.leaf || n.leaf->grad_after < 0) continue;
        const at::Tensor& g = static_cast<ta::AccumulateGrad*>(nodes[id])->variable.grad();
        if (g.defined() && g.unsafeGetTensorImpl() == impls[size_t(n.leaf->grad_after)])
          Snapshot(g, n.leaf->grad_after, Value::When::kEnd, -1);
      }
    }
    call.duration_us = Now();
    ClearTables();
    done = true;
  }

  // Ready to record another call; the tables keep their memory.
  void Reuse() {
    ClearTables();
    task = nullptr;
    graph_ready = false;
    selected = done = finished = false;
    call = Call();
    deferred = Deferred();
    exec_count_ = 0;
  }

  void ClearTables() {
    tensor_ids.clear();
    impls.clear();
    held_tensors.clear();
    storage_ids.clear();
    held_storages.clear();
    node_ids.clear();
    nodes.clear();
    first_input.clear();
    shape_known.clear();
    by_seq.clear();
    threads.clear();
    last_frames = nullptr;
  }

  int64_t exec_count_ = 0;
};

namespace {
ta::Engine& AnnouncingEngineInstance();
}  // namespace

struct FrameContext : at::ObserverContext {
  enum class Kind { kEval, kNode, kOp, kForward };
  Kind kind = Kind::kOp;
  CallRecorder* call = nullptr;
  const OpInfo* info = nullptr;  // for kOp
  int64_t op = -1;
  Clock::time_point start;
};

struct Recorder::State {
  RecorderOptions options;
  // Two callbacks. The light one sees only backward nodes, asks for no
  // inputs, and counts calls: ops of other scopes then build no
  // RecordFunction at all. It only needs a call's first node, so it takes
  // itself out there and the call's end puts it back: the other nodes of a
  // call that is not recorded build no RecordFunction either. (A backward
  // call on another thread that starts and ends inside that window is not
  // counted.) The heavy one sees every op with its inputs and outputs, and
  // is in only while a call that may be recorded can come. In a C++
  // program the recorder puts in its own engine (AnnouncingEngine), which
  // tells it each call's roots: the heavy callback is then in only while
  // such a call runs, and the forward pass goes unwatched. Elsewhere
  // (Python runs backward through its own engine) it is in from the end of
  // the call before, so that the forward op that makes the root is seen.
  at::CallbackHandle light = 0;
  bool light_wanted = true;  // false once every call it may record is done
  bool engine_installed = false;
  bool stopped = false;                      // Finish ran
  std::atomic<at::CallbackHandle> heavy{0};  // read without the lock by the light callback
  std::mutex mu;
  std::string error;
  bool disabled = false;
  int64_t calls_seen = 0;
  int64_t calls_recorded = 0;   // selected so far
  int64_t calls_completed = 0;  // selected and finished
  // The sizes of the last recorded call: the next is likely the same
  // shape, and reserving up front spares the growth of every array.
  CallSizes last_sizes;
  std::unordered_map<const void*, CallRecorder*> active;
  std::vector<std::unique_ptr<CallRecorder>> all_calls;
  // Replaced, never changed, so that calls share it without copying.
  std::shared_ptr<const ParameterNames> names;
  std::vector<c10::weak_intrusive_ptr<c10::TensorImpl>> named_held;
  Trace trace;
  // For each call in trace.calls, what Finish has yet to write into it.
  std::vector<Deferred> deferred_parts;

  // Nodes forward ops created, by (sequence number, forward thread). Weak:
  // the recorder must not keep a graph alive. Expired entries are swept
  // whenever the map doubles.
  std::mutex forward_mu;
  std::map<std::pair<uint64_t, uint64_t>, std::weak_ptr<ta::Node>> forward_nodes;
  size_t forward_sweep_at = 1024;

  void NoteForwardOutputs(const std::vector<c10::IValue>& outputs) {
    std::lock_guard<std::mutex> lock(forward_mu);
    for (const c10::IValue& v : outputs) {
      if (!v.isTensor()) continue;
      const at::Tensor& t = v.toTensor();
      if (!t.defined()) continue;
      std::shared_ptr<ta::Node> fn = t.grad_fn();
      if (!fn) continue;
      forward_nodes[{fn->sequence_nr(), fn->thread_id()}] = fn;
    }
    if (forward_nodes.size() >= forward_sweep_at) {
      for (auto it = forward_nodes.begin(); it != forward_nodes.end();)
        it = it->second.expired() ? forward_nodes.erase(it) : std::next(it);
      forward_sweep_at = std::max<size_t>(1024, forward_nodes.size() * 2);
    }
  }

  std::shared_ptr<ta::Node> ForwardNode(uint64_t seq, uint64_t thread) {
    std::lock_guard<std::mutex> lock(forward_mu);
    auto it = forward_nodes.find({seq, thread});
    return it == forward_nodes.end() ? nullptr : it->second.lock();
  }

  void Disable(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (disabled) return;
    disabled = true;
    g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
    error = why;
  }

  // Whether the next call to start may be recorded. Under mu.
  bool NextMaySelect() const {
    return options.calls.Selects(calls_seen) &&
           (options.calls.max_calls < 0 || calls_recorded < options.calls.max_calls);
  }

  // Put the heavy or the light callback in, or take it out. Under mu.
  void SetHeavy(bool on);
  void SetLight(bool on);

  // Whether calls announce their roots, so that the forward pass need not
  // be watched. Another engine (Python's) may have replaced ours since it
  // was installed. Under mu.
  bool Announced() const {
    return engine_installed && &ta::Engine::get_default_engine() == &AnnouncingEngineInstance();
  }

  // The heavy callback is wanted while a call being recorded runs, and
  // before a call that may be recorded: where calls announce themselves,
  // from its graph task's start on; elsewhere from the end of the call
  // before, so as to see the forward pass. The light one is wanted until
  // every call that may be recorded is done, except while an announced call
  // runs (it is counted when its graph task starts). Under mu.
  void UpdateCallbacks() {
    if (disabled || stopped) {
      SetLight(false);
      SetHeavy(false);
      return;
    }
    bool want_heavy = false;
    for (const auto& [task, other] : active) want_heavy |= other->selected;
    for (const Announcement& a : announced) want_heavy |= a.selected;
    bool announcing = Announced();
    if (!announcing) want_heavy |= NextMaySelect();
    SetHeavy(want_heavy);
    SetLight(light_wanted && !(announcing && !announced.empty()));
  }

  // A call inside AnnouncingEngine::execute. It is counted, and chosen or
  // not, when the engine has made its graph task and before any node runs
  // (a call the engine refuses before that is not counted, as in Python);
  // the first frame of that graph task finds it by the task.
  struct Announcement {
    uint64_t serial = 0;
    const void* task = nullptr;    // the graph task's node set, once made
    CallRecorder* call = nullptr;  // once the task's first frame was seen
    int64_t index = -1;
    bool selected = false;
    bool finished = false;  // its Finished ran (from then on `call` may be reused)
  };
  std::vector<Announcement> announced;
  uint64_t next_serial = 1;

  Announcement* FindAnnouncement(uint64_t serial) {
    for (Announcement& a : announced)
      if (a.serial == serial) return &a;
    return nullptr;
  }

  // AnnouncingEngine::execute, before the engine runs a call; returns what
  // the other two take (0: not announced).
  uint64_t CallComing() {
    std::lock_guard<std::mutex> lock(mu);
    if (disabled || stopped || !Announced()) return 0;
    Announcement a;
    a.serial = next_serial++;
    announced.push_back(a);  // callbacks change in TaskStarting: no node runs before it
    return a.serial;
  }

  // AnnouncingEngine::execute_with_graph_task: the graph task is made and
  // no node has run. `root` is the node the engine starts from: the root
  // itself, or a GraphRoot over several.
  void TaskStarting(uint64_t serial, const void* task, const std::shared_ptr<ta::Node>& root) {
    std::lock_guard<std::mutex> lock(mu);
    Announcement* a = FindAnnouncement(serial);
    if (!a || disabled || stopped) return;
    a->task = task;
    a->selected = NextMaySelect();
    a->index = calls_seen++;
    if (a->selected) ++calls_recorded;
    UpdateCallbacks();  // the light callback goes out; the heavy one comes in for a chosen call
    if (a->selected && root) {
      std::lock_guard<std::mutex> forward_lock(forward_mu);
      forward_nodes[{root->sequence_nr(), root->thread_id()}] = root;
    }
  }

  void CallReturned(uint64_t serial) {
    std::lock_guard<std::mutex> lock(mu);
    if (Announcement* a = FindAnnouncement(serial)) {
      bool threw = a->call && !a->finished;
      if (threw) {
        // The call threw: the engine runs no final callback then, so
        // Finished never came. It is not recorded; its recorder is let go,
        // so that the next graph task (which may get the same address) is
        // a call of its own.
        CallRecorder* c = a->call;
        active.erase(c->task);
        g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
        {
          std::lock_guard<std::mutex> call_lock(c->mu);
          c->done = true;
        }
        c->finished = true;
      }
      // A chosen call that recorded nothing does not use up --max-calls.
      if (a->selected && (!a->call || threw)) --calls_recorded;
      announced.erase(announced.begin() + (a - announced.data()));
    }
    UpdateCallbacks();
  }

  // The announced call a new graph task is; null for a call that was not
  // announced.
  Announcement* MatchAnnouncement(const void* task) {
    for (Announcement& a : announced)
      if (a.task == task && !a.call) return &a;
    return nullptr;
  }

  // The call a graph task belongs to. Every op of a call asks, so each
  // thread remembers its last answer until any call ends or recording stops
  // (g_calls_epoch moves on), and only then takes the lock.
  CallRecorder* CallFor(const std::unordered_set<ta::Node*>* task) {
    thread_local struct {
      const void* task = nullptr;
      CallRecorder* call = nullptr;
      uint64_t epoch = 0;
    } last;
    uint64_t epoch = g_calls_epoch.load(std::memory_order_acquire);
    if (last.task == task && last.epoch == epoch) return last.call;
    std::lock_guard<std::mutex> lock(mu);
    if (disabled) return nullptr;
    CallRecorder* c = FindOrStartCall(task);
    last = {task, c, epoch};
    return c;
  }

  // Under mu.
  CallRecorder* FindOrStartCall(const std::unordered_set<ta::Node*>* task) {
    auto it = active.find(task);
    if (it != active.end()) return it->second;
    // Calls that finished before this one began have no frame open any
    // more: one is reused for this call (its tables keep their memory), the
    // others freed, so a long run does not grow.
    std::unique_ptr<CallRecorder> call;
    for (std::unique_ptr<CallRecorder>& done : all_calls)
      if (done->finished && !call) call = std::move(done);
    all_calls.erase(std::remove_if(all_calls.begin(), all_calls.end(),
                                   [](const std::unique_ptr<CallRecorder>& c) { return !c || c->finished; }),
                    all_calls.end());
    if (call)
      call->Reuse();
    else
      call = std::make_unique<CallRecorder>();
    CallRecorder* c = call.get();
    c->task = task;
    c->t0 = Clock::now();
    c->values = options.values;
    c->forward_node = [this](uint64_t seq, uint64_t thread) { return ForwardNode(seq, thread); };
    if (Announcement* a = MatchAnnouncement(task)) {
      a->call = c;
      c->call.index = a->index;
      c->selected = a->selected;
    } else {
      // A call that starts while the heavy callback is out cannot be
      // recorded whole; it only happens when calls overlap in time.
      c->selected = heavy.load() != 0 && NextMaySelect();
      c->call.index = calls_seen++;
      if (c->selected) ++calls_recorded;
    }
    active.emplace(task, c);
    all_calls.push_back(std::move(call));
    if (c->selected) {
      c->deferred.owed = true;
      c->deferred.names = names;
      c->call.api = ta::get_current_graph_task_exec_info() && !ta::get_current_graph_task_exec_info()->empty()
                        ? "grad"
                        : "backward";
      c->call.create_graph = at::GradMode::is_enabled();
      c->call.keep_graph = ta::get_current_graph_task_keep_graph();
      c->call.start_unix_s =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      c->Reserve(last_sizes);
    }
    // The engine runs final callbacks once every node of the graph task is
    // done: that is where the call ends.
    ta::Engine::get_default_engine().queue_callback([this, c] { Finished(c); });
    return c;
  }

  void Finished(CallRecorder* c) {
    BusyGuard busy;
    // Marked last, on every way out: from then on the next call may reuse it.
    struct MarkFinished {
      State* st;
      CallRecorder* c;
      ~MarkFinished() {
        std::lock_guard<std::mutex> lock(st->mu);
        c->finished = true;
      }
    } mark{this, c};
    {
      std::lock_guard<std::mutex> lock(mu);
      active.erase(c->task);
      for (Announcement& a : announced)
        if (a.call == c) a.finished = true;
      g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
      UpdateCallbacks();
    }
    if (!c->selected) return;
    try {
      std::lock_guard<std::mutex> call_lock(c->mu);
      c->Complete();
    } catch (const std::exception& e) {
      Disable(std::string("recording failed at the end of a backward call: ") + e.what());
      return;
    }
    Call call = std::move(c->call);
    c->call = Call();
    Deferred deferred = std::move(c->deferred);
    c->deferred = Deferred();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (disabled) return;
      call.index = calls_completed++;
      last_sizes.nodes = call.nodes.size();
      last_sizes.ops = deferred.ops.size();
      last_sizes.args = deferred.args.size();
      last_sizes.ints = deferred.ints.size();
      last_sizes.tensors = deferred.tensors.size();
      last_sizes.storages = call.storages.size();
      last_sizes.values = call.values.size();
      last_sizes.dims = deferred.dims.size();
      // Once every call it may record is done, the light callback goes
      // too: the rest of the program runs as if the recorder were not there.
      if (options.calls.max_calls >= 0 && calls_completed >= options.calls.max_calls) {
        light_wanted = false;
        SetLight(false);
      }
    }
    // Outside the lock: on_call may ask the Recorder for its error().
    // Guards are derived from the rest of the call; a kept call gets them in
    // Finish, after the program's steps, so they cost it nothing.
    if (options.on_call) {
      deferred.WriteInto(&call);
      call.guards = ComputeGuards(call);
      options.on_call(call);
    }
    if (options.keep_calls) {
      std::lock_guard<std::mutex> lock(mu);
      trace.calls.push_back(std::move(call));
      deferred_parts.push_back(std::move(deferred));
    }
  }
};

namespace {

std::atomic<Recorder::State*> g_state{nullptr};

// libtorch's own engine, unchanged, except that it tells the recorder when
// each call comes, its graph task and the node it starts from (before any
// node runs), and when it returns. libtorch lets a process choose its
// default engine (Python puts its own in this way); a C++ program's
// backward() and grad() run through it. Without it, the single root of a
// call is only found by watching the forward op that made it.
// The call this thread's execute() announced, for the execute_with_graph_task
// the engine calls from inside it.
thread_local uint64_t t_announced = 0;

class AnnouncingEngine : public ta::Engine {
 public:
  ta::variable_list execute(const ta::edge_list& roots, const ta::variable_list& inputs, bool keep_graph,
                            bool create_graph, bool accumulate_grad, const ta::edge_list& outputs) override {
    Recorder::State* st = g_state.load(std::memory_order_acquire);
    if (!st) return ta::Engine::execute(roots, inputs, keep_graph, create_graph, accumulate_grad, outputs);
    // A backward call made inside an op (a kernel that calls grad) is a
    // call of its own, not a nested op: t_in_op is off until it returns.
    struct Scope {
      Recorder::State* st;
      uint64_t serial;
      uint64_t outer_serial;
      bool outer_in_op;
      ~Scope() {
        t_announced = outer_serial;
        t_in_op = outer_in_op;
        if (g_state.load(std::memory_order_acquire) == st) st->CallReturned(serial);
      }
    } scope{st, st->CallComing(), t_announced, t_in_op};
    t_announced = scope.serial;
    t_in_op = false;
    return ta::Engine::execute(roots, inputs, keep_graph, create_graph, accumulate_grad, outputs);
  }

  c10::intrusive_ptr<at::ivalue::Future> execute_with_graph_task(
      const std::shared_ptr<ta::GraphTask>& graph_task, std::shared_ptr<ta::Node> graph_root,
      ta::InputBuffer&& input_buffer) override {
    uint64_t serial = t_announced;
    t_announced = 0;  // taken: a call its nodes make announces itself
    Recorder::State* st = g_state.load(std::memory_order_acquire);
    if (st && serial) st->TaskStarting(serial, &graph_task->nodes_in_graph_, graph_root);
    return ta::Engine::execute_with_graph_task(graph_task, std::move(graph_root), std::move(input_buffer));
  }
};

ta::Engine& AnnouncingEngineInstance() {
  // Never destroyed: a call may still run in it at exit, and the threads it
  // starts for devices outlive any recorder.
  static ta::Engine* engine = new AnnouncingEngine();
  return *engine;
}

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  if (t_busy || t_in_op) return nullptr;
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  if (!st) return nullptr;
  const auto* task = ta::get_current_graph_task_nodes_in_graph();
  if (!task) {
    // A forward op: note which nodes its outputs point to, so the root of a
    // later backward call can be found. Ops outside grad mode make none.
    if (fn.seqNr() < 0 || fn.scope() != at::RecordScope::FUNCTION) return nullptr;
    auto ctx = std::make_unique<FrameContext>();
    ctx->kind = FrameContext::Kind::kForward;
    return ctx;
  }
  BusyGuard busy;
  CallRecorder* call = nullptr;
  try {
    call = st->CallFor(task);
    if (!call || !call->selected) return nullptr;
    std::lock_guard<std::mutex> lock(call->mu);
    if (call->done) return nullptr;
    ThreadFrames& frames = call->Frames(at::RecordFunction::currentThreadId());
    auto ctx = std::make_unique<FrameContext>();
    ctx->call = call;
    EvalFrame* eval = frames.evals.empty() ? nullptr : &frames.evals.back();

    if (fn.scope() == at::RecordScope::BACKWARD_FUNCTION) {
      ctx->kind = FrameContext::Kind::kNode;
      call->NodeStarted(fn, eval);
      return ctx;
    }
    if (std::strncmp(fn.name(), kEvaluatePrefix, std::strlen(kEvaluatePrefix)) == 0) {
      frames.evals.emplace_back();
      ctx->kind = FrameContext::Kind::kEval;
      return ctx;
    }
    const OpInfo* info = LookupOp(fn);
    if (!info) return nullptr;  // a user's named region: transparent
    Deferred& deferred = call->deferred;
    int64_t index = int64_t(deferred.ops.size());
    PendingOp op;
    op.info = info;
    op.thread = frames.index;
    ctx->start = Clock::now();
    op.start_us = Micros(call->t0, ctx->start);
    if (!eval) {
      op.phase = Op::Phase::kEngine;
    } else if (eval->stage == Stage::kPre) {
      op.phase = Op::Phase::kPreHook;
      eval->pending_ops.push_back(index);
    } else {
      op.phase = eval->stage == Stage::kIn ? Op::Phase::kNode : Op::Phase::kPostNode;
      op.node = eval->node;
      if (op.node < 0) eval->pending_ops.push_back(index);  // AccumulateGrad not yet resolved
    }
    const c10::FunctionSchema& schema = info->schema;
    ctx->info = info;
    auto inputs = fn.inputs();
    op.args_at = uint32_t(deferred.args.size());
    op.nargs = uint32_t(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      // real_type: the schema's `type` says int for ScalarType, Layout, MemoryFormat.
      const c10::Type* type =
          i < schema.arguments().size() ? schema.arguments()[i].real_type().get() : nullptr;
      deferred.args.push_back(call->Note(inputs[i], type, kRoleSaved, true));
    }
    // A tensor first seen as an op input came from outside the call; one
    // seen earlier keeps the roles it had (the saved role only sticks to
    // tensors that were not produced inside the call).
    auto unmark = [&](int64_t id) {
      uint32_t& roles = call->deferred.tensors[size_t(id)].roles;
      if (roles & (kRoleOpOutput | kRoleNodeInput)) roles &= ~uint32_t(kRoleSaved);
    };
    for (uint32_t k = 0; k < op.nargs; ++k) call->ForEachNotedTensor(deferred.args[op.args_at + k], unmark);
    ctx->op = index;
    deferred.ops.push_back(op);
    t_in_op = true;  // last: a failure above leaves no op open
    return ctx;
  } catch (const std::exception& e) {
    st->Disable(std::string("recording stopped: ") + e.what());
    return nullptr;
  }
}

void OnEnd(const at::RecordFunction& fn, at::ObserverContext* raw) {
  if (!raw || t_busy) return;
  auto* ctx = static_cast<FrameContext*>(raw);
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  BusyGuard busy;
  if (ctx->kind == FrameContext::Kind::kForward) {
    if (st) st->NoteForwardOutputs(fn.outputs());
    return;
  }
  CallRecorder* call = ctx->call;
  if (ctx->kind == FrameContext::Kind::kOp) t_in_op = false;
  try {
    std::lock_guard<std::mutex> lock(call->mu);
    if (call->done) return;
    ThreadFrames& frames = call->Frames(at::RecordFunction::currentThreadId());
    switch (ctx->kind) {
      case FrameContext::Kind::kEval:
        if (!frames.evals.empty()) frames.evals.pop_back();
        return;
      case FrameContext::Kind::kNode:
        call->NodeEnded(frames.evals.empty() ? nullptr : &frames.evals.back());
        return;
      case FrameContext::Kind::kOp:
      case FrameContext::Kind::kForward:
        break;
    }
    Deferred& deferred = call->deferred;
    // Note, Register and Snapshot grow other arrays, never deferred.ops.
    PendingOp& op = deferred.ops[size_t(ctx->op)];
    op.duration_us = Micros(ctx->start, Clock::now());
    const c10::FunctionSchema& schema = ctx->info->schema;
    const auto& outputs = fn.outputs();
    op.outs_at = uint32_t(deferred.args.size());
    op.nouts = uint32_t(outputs.size());
    bool snapshot = call->values == ValuesMode::kAll && !OutputsUninitialized(ctx->info->name);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const c10::Type* type = nullptr;
      if (i < schema.returns().size()) type = schema.returns()[i].real_type().get();
      PendingArg out = call->Note(outputs[i], type, kRoleOpOutput, false);
      deferred.args.push_back(out);
      if (!snapshot) continue;
      auto snap = [&](int64_t id, const at::Tensor& t) {
        if (id >= 0) call->Snapshot(t, id, Value::When::kAfterOp, ctx->op);
      };
      if (out.kind == PendingArg::Kind::kTensor && outputs[i].isTensor()) snap(out.i, outputs[i].toTensor());
      if (out.kind == PendingArg::Kind::kTensorList) {
        auto list = outputs[i].toListRef();
        for (size_t k = 0; k < out.len && k < list.size(); ++k)
          if (list[k].isTensor()) snap(deferred.ints[out.at + k], list[k].toTensor());
      }
    }
  } catch (const std::exception& e) {
    if (st) st->Disable(std::string("recording stopped: ") + e.what());
  }
}

// Counts the calls the heavy callback is not there to see.
std::unique_ptr<at::ObserverContext> OnLightStart(const at::RecordFunction&) {
  if (t_busy) return nullptr;
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  if (!st || st->heavy) return nullptr;
  const auto* task = ta::get_current_graph_task_nodes_in_graph();
  if (!task) return nullptr;
  BusyGuard busy;
  try {
    st->CallFor(task);
    // Counted: the rest of this call's nodes need not call back.
    std::lock_guard<std::mutex> lock(st->mu);
    if (!st->heavy) st->SetLight(false);
  } catch (const std::exception& e) {
    st->Disable(std::string("recording stopped: ") + e.what());
  }
  return nullptr;
}

}  // namespace

void Recorder::State::SetLight(bool on) {
  if (on == (light != 0)) return;
  if (on) {
    light = at::addGlobalCallback(
        at::RecordFunctionCallback(&OnLightStart).scopes({at::RecordScope::BACKWARD_FUNCTION}));
  } else {
    at::removeCallback(light);
    light = 0;
  }
}

void Recorder::State::SetHeavy(bool on) {
  if (on == (heavy.load() != 0)) return;
  if (on) {
    heavy = at::addGlobalCallback(
        at::RecordFunctionCallback(&OnStart, &OnEnd).needsInputs(true).needsOutputs(true));
  } else {
    at::removeCallback(heavy.load());
    heavy = 0;
    std::lock_guard<std::mutex> lock(forward_mu);
    forward_nodes.clear();  // only the next recorded call's forward matters
  }
}

Recorder::Recorder(RecorderOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  Recorder::State* expected = nullptr;
  if (!g_state.compare_exchange_strong(expected, state_.get())) {
    state_->disabled = true;
    state_->error = "another cautograd recorder is already active in this process";
    return;
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  ta::Engine& current = ta::Engine::get_default_engine();
  if (!PythonInProcess() &&
      (&current == &ta::Engine::get_base_engine() || &current == &AnnouncingEngineInstance())) {
    ta::set_default_engine_stub(&AnnouncingEngineInstance);
    state_->engine_installed = true;
  }
  state_->UpdateCallbacks();
}

Recorder::~Recorder() { Finish(); }

bool Recorder::active() const { return g_state.load() == state_.get() && !state_->disabled; }

std::string Recorder::error() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->error;
}

void Recorder::NameParameters(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto names =
      state_->names ? std::make_shared<ParameterNames>(*state_->names) : std::make_shared<ParameterNames>();
  for (const auto& [name, t] : named) {
    if (!t.defined()) continue;
    (*names)[t.unsafeGetTensorImpl()] = name;
    // Keep the address from being reused by another tensor under this name.
    state_->named_held.push_back(c10::weak_intrusive_ptr<c10::TensorImpl>(t.getIntrusivePtr()));
  }
  state_->names = std::move(names);
}

int Recorder::calls_seen() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return int(state_->calls_seen);
}

Meta RecorderMeta(ValuesMode values) {
  Meta meta;
  meta.tool_version = kToolVersion;
  meta.libtorch_version = TORCH_VERSION;
  meta.time = NowIso8601();
  meta.host = HostName();
  meta.values = values;
  return meta;
}

Trace Recorder::Finish() {
  Recorder::State* mine = state_.get();
  g_state.compare_exchange_strong(mine, nullptr);
  std::lock_guard<std::mutex> lock(state_->mu);
  g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
  state_->stopped = true;
  state_->SetHeavy(false);
  if (state_->engine_installed) {
    if (&ta::Engine::get_default_engine() == &AnnouncingEngineInstance())
      ta::set_default_engine_stub(&ta::Engine::get_base_engine);
    state_->engine_installed = false;
  }
  state_->light_wanted = false;
  state_->SetLight(false);
  Trace trace = std::move(state_->trace);
  state_->trace = Trace();
  for (size_t i = 0; i < trace.calls.size() && i < state_->deferred_parts.size(); ++i)
    state_->deferred_parts[i].WriteInto(&trace.calls[i]);
  state_->deferred_parts.clear();
  if (!state_->options.on_call)
    for (Call& call : trace.calls) call.guards = ComputeGuards(call);
  trace.meta = RecorderMeta(state_->options.values);
  return trace;
}

Trace RecordCalls(const std::function<void()>& fn, RecorderOptions options) {
  Recorder recorder(std::move(options));
  fn();
  return recorder.Finish();
}

}  // namespace cautograd
