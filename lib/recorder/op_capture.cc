#include "lib/recorder/op_capture.h"

#include <mutex>
#include <typeinfo>

#include <c10/util/Type.h>

namespace cautograd {
namespace rec {

thread_local bool t_busy = false;
thread_local bool t_in_op = false;
thread_local int t_unrecordable = 0;
std::atomic<uint64_t> g_calls_epoch{1};

std::string OneLine(const std::exception& e) {
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  std::string text = error ? error->what_without_backtrace() : e.what();
  size_t end = text.find('\n');
  if (end != std::string::npos) text.resize(end);
  while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.pop_back();
  return text;
}

std::string DtypeOf(const at::Tensor& t) {
  const char* name = DtypeName(t.scalar_type());
  if (!*name) throw RecorderFailure(std::string("unsupported dtype ") + c10::toString(t.scalar_type()));
  return name;
}

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

Arg Deferred::ToArg(PendingArg& p, const c10::Type* type) {
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

void Deferred::WriteInto(Call* call) {
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
      info.layout = LayoutName(m.layout);
      info.sparse_dim = m.sparse_dim;  // Register refused layouts the trace has no name for
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

}  // namespace rec
}  // namespace cautograd
