#include "lib/recorder/call_recorder.h"

#include <algorithm>
#include <cstring>

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include "lib/bridge/tensor_bytes.h"
#include "lib/recorder/python_hooks.h"
#include "lib/torch_compat/ca_walk.h"

namespace cautograd {
namespace rec {

void CallRecorder::Reserve(const CallSizes& n) {
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

void CallRecorder::Snapshot(const at::Tensor& t, int64_t id, Value::When when, int64_t op) {
  Value v;
  v.tensor = id;
  v.when = when;
  v.op = op;
  const TensorMeta& m = deferred.tensors[size_t(id)];
  v.dtype = DtypeName(m.dtype);
  v.numel = deferred.Numel(m);
  v.data = TensorBytes(t);
  if (on_value) {
    v.spooled = (*on_value)(std::move(v.data));
    v.data.clear();
    v.has_data = false;
  }
  call.values.push_back(std::move(v));
}

int64_t CallRecorder::StorageId(const at::Tensor& t) {
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

int64_t CallRecorder::Register(const at::Tensor& t, uint32_t role, bool snapshot_if_new) {
  if (!t.defined()) return -1;
  const c10::TensorImpl* impl = t.unsafeGetTensorImpl();
  if (const int64_t* known = tensor_ids.Find(impl)) {
    deferred.tensors[size_t(*known)].roles |= role;
    return *known;
  }
  c10::ScalarType dtype = t.scalar_type();
  if (!*DtypeName(dtype))
    throw RecorderFailure(std::string("a tensor of dtype ") + c10::toString(dtype) +
                          ", which a trace cannot describe");
  if (t.is_nested())
    throw RecorderFailure("a nested tensor (torch.nested), which a trace cannot describe: it has no one shape");
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
  m.layout = t.layout();
  m.strided = m.layout == at::kStrided;
  if (!m.strided && (!*LayoutName(m.layout) || !IsKnownLayout(LayoutName(m.layout))))
    throw RecorderFailure("a tensor of layout " + c10::str(m.layout) + ", which a trace cannot describe");
  if (m.layout == at::kSparse) m.sparse_dim = t.sparse_dim();
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

PendingArg CallRecorder::Note(const c10::IValue& v, const c10::Type* type, uint32_t role, bool snapshot) {
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

int64_t CallRecorder::AddNode(ta::Node* fn) {
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

void CallRecorder::InitGraph(const std::unordered_set<ta::Node*>& in_graph, ta::Node* root) {
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

void CallRecorder::WalkCompiledAutogradKey(const at::RecordFunction& fn) {
  compat::CaWalkStart start;
  ta::Node* current = compat::CurrentNode();
  if (!current) return;
  if (std::strcmp(fn.name(), kGraphRoot) == 0) {
    start.graph_root = compat::SharedFrom(current);
  } else {
    // A single root: compiled autograd puts a GraphRoot over it, with the
    // gradient the call starts from.
    const auto& inputs = fn.inputs();
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].isTensor() || !inputs[i].toTensor().defined()) continue;
      start.root_edges.emplace_back(compat::SharedFrom(current), uint32_t(i));
      start.grads.push_back(inputs[i].toTensor());
    }
  }
  start.exec_info = ta::get_current_graph_task_exec_info();
  start.outputs_from_exec_info = true;
  PythonGilScope gil;  // Python Functions and hooks give their keys from Python
  call.compiled_autograd = compat::WalkCompiledAutograd(start, [this](const ta::Node* n) {
    const int64_t* id = node_ids.Find(n);
    return id ? *id : int64_t(-1);
  });
  if (!call.compiled_autograd.error.empty()) gil.ClearError();
}

std::vector<EvalFrame::Candidate> CallRecorder::AccumulateCandidates(const at::Tensor& grad) {
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

int64_t CallRecorder::ResolveAccumulate(const std::vector<EvalFrame::Candidate>& candidates) {
  if (candidates.empty()) return -1;
  if (candidates.size() == 1) return candidates[0].node;
  for (const auto& c : candidates) {
    const at::Tensor& g = static_cast<ta::AccumulateGrad*>(nodes[size_t(c.node)])->variable.grad();
    const c10::TensorImpl* impl = g.defined() ? g.unsafeGetTensorImpl() : nullptr;
    if (impl != c.grad || (g.defined() && g._version() != c.version)) return c.node;
  }
  return candidates[0].node;
}

bool CallRecorder::NodeStarted(const at::RecordFunction& fn, EvalFrame* eval) {
  const char* name = fn.name();
  bool graph_root = std::strcmp(name, kGraphRoot) == 0;
  if (!graph_ready) {
    compat::NodePtr root;
    if (!graph_root) {
      // The engine names the node it is running (2.4+); before that, the
      // forward op that made it does.
      if (ta::Node* current = compat::CurrentNode()) root = compat::SharedFrom(current);
      if (!root && forward_node) root = forward_node(uint64_t(fn.seqNr()), fn.forwardThreadId());
    }
    InitGraph(*task, root.get());
    if (ca_key) WalkCompiledAutogradKey(fn);
  }
  if (graph_root) return true;  // a dummy node the engine makes for several roots
  // A node that runs inside the running one is part of it, not a node of
  // the graph: CopySlices runs the backward of an in-place op on a view
  // that way. Its ops are the outer node's.
  if (eval && eval->stage == Stage::kIn) return false;
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
                          std::to_string(fn.seqNr()) + ") in the graph the engine runs");
  if (id >= 0)
    BeginNode(id, inputs, eval);
  else
    eval->candidate_inputs = std::move(inputs);
  return true;
}

void CallRecorder::BeginNode(int64_t id, const std::vector<at::Tensor>& inputs, EvalFrame* eval) {
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

void CallRecorder::NodeEnded(EvalFrame* eval) {
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

void CallRecorder::FillMissingShapes() {
  at::DisableRecordFunctionGuard no_record;
  at::NoGradGuard no_grad;
  for (size_t id = 0; id < nodes.size(); ++id) {
    Node& n = call.nodes[id];
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (shape_known[first_input[id] + i]) continue;
      n.inputs[i].shape = compat::MetadataShape(nodes[id]->input_metadata(uint32_t(i)));
    }
  }
}

void CallRecorder::Complete() {
  FillMissingShapes();
  if (values == ValuesMode::kAll || values == ValuesMode::kInputs) {
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

void CallRecorder::Fail(const std::string& why) {
  if (!failed.empty() || done) return;
  failed = why;
  done = true;
  double start = call.start_unix_s;
  ClearTables();
  call = Call();
  call.start_unix_s = start;
  deferred = Deferred();
}

std::string CallRecorder::Where(const char* frame, int64_t node) const {
  std::string out;
  if (node >= 0 && size_t(node) < call.nodes.size()) out = "node '" + call.nodes[size_t(node)].type + "'";
  if (frame && *frame && (out.empty() || call.nodes[size_t(node)].type != frame)) {
    bool op = std::strstr(frame, "::") && std::strncmp(frame, "torch::autograd::", 17) != 0;
    out += (out.empty() ? "" : " (") + std::string(op ? "op '" : "node '") + frame + "'" + (out.empty() ? "" : ")");
  }
  return out;
}

void CallRecorder::Reuse() {
  ClearTables();
  task = nullptr;
  graph_ready = false;
  selected = done = finished = false;
  program_call = -1;
  failed.clear();
  ++serial;
  call = Call();
  deferred = Deferred();
  exec_count_ = 0;
}

void CallRecorder::ClearTables() {
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
}  // namespace rec
}  // namespace cautograd
