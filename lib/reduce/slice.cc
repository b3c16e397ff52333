#include "lib/reduce/slice.h"

#include <algorithm>
#include <set>

#include "lib/trace/op_semantics.h"

namespace cautograd {

CallSlicer::CallSlicer(const Call& call) : call_(call) {
  const size_t n = call.ops.size();
  reads_.resize(n);
  outputs_.resize(n);
  maker_.assign(call.tensors.size(), -1);
  std::vector<int64_t> first_read(call.tensors.size(), -1);
  for (size_t x = 0; x < n; ++x) {
    const Op& op = call.ops[x];
    std::set<int64_t> reads, read_keys, outs;
    for (const Arg& a : op.args) ForEachTensor(a, [&](int64_t id) { reads.insert(id); });
    for (const Arg& a : op.outputs) ForEachTensor(a, [&](int64_t id) { outs.insert(id); });
    reads_[x].assign(reads.begin(), reads.end());
    outputs_[x].assign(outs.begin(), outs.end());
    for (int64_t id : reads) {
      read_keys.insert(Key(id));
      if (first_read[size_t(id)] < 0) first_read[size_t(id)] = int64_t(x);
    }
    // An output the op also read was written in place; one on memory none
    // of its inputs live in was made; one on an input's memory under a new
    // tensor is a view, which writes nothing.
    std::set<int64_t> written;
    for (int64_t id : outs) {
      const bool in_place = reads.count(id) > 0;
      if (!in_place && maker_[size_t(id)] < 0) maker_[size_t(id)] = int64_t(x);
      if (in_place || !read_keys.count(Key(id))) written.insert(Key(id));
    }
    for (int64_t key : written) writes_[key].push_back(int64_t(x));
  }
  for (const Value& v : call.values) {
    if (v.tensor < 0 || v.tensor >= int64_t(call.tensors.size())) continue;
    if (v.when == Value::When::kEnd) {
      end_values_.push_back(&v);
      continue;
    }
    if (v.when == Value::When::kAfterOp) {
      if (v.op < 0 || v.op >= int64_t(n)) continue;
      after_values_.push_back(&v);
      // What an op that makes uninitialized memory leaves there means nothing.
      if (OutputsUninitialized(call.ops[size_t(v.op)].name)) continue;
      values_[v.tensor].push_back({VersionBefore(Key(v.tensor), v.op + 1), &v});
    } else if (first_read[size_t(v.tensor)] >= 0) {
      values_[v.tensor].push_back({VersionBefore(Key(v.tensor), first_read[size_t(v.tensor)]), &v});
    }
  }
}

int64_t CallSlicer::Key(int64_t tensor) const {
  const int64_t storage = call_.tensors[size_t(tensor)].storage;
  return storage >= 0 ? storage : int64_t(call_.storages.size()) + tensor;
}

int64_t CallSlicer::VersionBefore(int64_t key, int64_t u) const {
  auto it = writes_.find(key);
  if (it == writes_.end()) return 0;
  return int64_t(std::lower_bound(it->second.begin(), it->second.end(), u) - it->second.begin());
}

const Value* CallSlicer::ValueAt(int64_t tensor, int64_t version) const {
  auto it = values_.find(tensor);
  if (it == values_.end()) return nullptr;
  for (const auto& [v, value] : it->second)
    if (v == version) return value;
  return nullptr;
}

bool CallSlicer::FindProblem(const std::vector<int64_t>& kept, std::vector<int64_t>* add, std::string* why) const {
  std::vector<bool> in(call_.ops.size(), false);
  for (int64_t x : kept) in[size_t(x)] = true;
  std::set<int64_t> adds;
  // Every write to a storage between the first and the last kept op that
  // touches it.
  std::map<int64_t, std::pair<int64_t, int64_t>> span;  // key -> (first, last) kept op touching it
  for (int64_t x : kept)
    for (const auto* list : {&reads_[size_t(x)], &outputs_[size_t(x)]})
      for (int64_t id : *list) {
        auto [it, fresh] = span.try_emplace(Key(id), x, x);
        if (!fresh) it->second.second = x;
      }
  for (const auto& [key, range] : span) {
    auto w = writes_.find(key);
    if (w == writes_.end()) continue;
    for (auto it = std::lower_bound(w->second.begin(), w->second.end(), range.first);
         it != w->second.end() && *it <= range.second; ++it)
      if (!in[size_t(*it)]) adds.insert(*it);
  }
  // Every tensor that becomes an input, from a value at its version.
  std::vector<bool> defined(call_.tensors.size(), false);
  for (int64_t u : kept) {
    for (int64_t id : reads_[size_t(u)]) {
      if (defined[size_t(id)]) continue;
      defined[size_t(id)] = true;
      const int64_t key = Key(id), version = VersionBefore(key, u);
      if (ValueAt(id, version)) continue;
      const int64_t maker = maker_[size_t(id)];
      if (maker >= 0 && maker < u) {  // made by an op left out: keep it
        adds.insert(maker);
        continue;
      }
      if (version > 0) {
        // Written by an op left out: keep it. Written by a kept op: the
        // input is a view of memory the cut writes, which replay makes.
        const int64_t writer = writes_.at(key)[size_t(version - 1)];
        if (!in[size_t(writer)]) adds.insert(writer);
        continue;
      }
      // From outside the call, as it was at the start: replay synthesizes a
      // floating-point input the trace holds no value for, as it would for
      // the whole call; it never invents integers.
      if (IsIntegralDtype(call_.tensors[size_t(id)].dtype)) {
        *why = "op " + std::to_string(u) + " (" + OpLabel(call_.ops[size_t(u)]) + ") reads " +
               call_.tensors[size_t(id)].dtype + " tensor " + std::to_string(id) +
               " from outside the call and the trace holds no value for it (record with --values ints or all)";
        return false;
      }
    }
    for (int64_t id : outputs_[size_t(u)]) defined[size_t(id)] = true;
  }
  add->assign(adds.begin(), adds.end());
  return true;
}

bool CallSlicer::Close(std::vector<int64_t>* ops, std::string* why) const {
  std::sort(ops->begin(), ops->end());
  ops->erase(std::unique(ops->begin(), ops->end()), ops->end());
  for (;;) {
    std::vector<int64_t> add;
    if (!FindProblem(*ops, &add, why)) return false;
    if (add.empty()) return true;
    std::vector<int64_t> merged;
    std::set_union(ops->begin(), ops->end(), add.begin(), add.end(), std::back_inserter(merged));
    *ops = std::move(merged);
  }
}

void CallSlicer::Inputs(const std::vector<int64_t>& kept, std::map<int64_t, const Value*>* inputs) const {
  std::vector<bool> defined(call_.tensors.size(), false);
  for (int64_t u : kept) {
    for (int64_t id : reads_[size_t(u)]) {
      if (defined[size_t(id)]) continue;
      defined[size_t(id)] = true;
      (*inputs)[id] = ValueAt(id, VersionBefore(Key(id), u));
    }
    for (int64_t id : outputs_[size_t(u)]) defined[size_t(id)] = true;
  }
}

bool CallSlicer::Cut(const std::vector<int64_t>& ops, Call* out, std::vector<int64_t>* op_origin,
                     std::vector<int64_t>* tensor_origin, std::string* why) const {
  for (int64_t x : ops)
    if (x < 0 || x >= int64_t(call_.ops.size())) {
      *why = "no op " + std::to_string(x) + " in call " + std::to_string(call_.index);
      return false;
    }
  std::vector<bool> in(call_.ops.size(), false);
  for (int64_t x : ops) in[size_t(x)] = true;
  std::map<int64_t, const Value*> inputs;
  Inputs(ops, &inputs);

  // Tensors, storages and nodes the kept ops touch, renumbered in order.
  std::vector<int64_t> tensor_map(call_.tensors.size(), -1), storage_map(call_.storages.size(), -1),
      node_map(call_.nodes.size(), -1);
  std::map<int64_t, int64_t> first_touch;  // key -> first kept op touching it
  for (int64_t x : ops) {
    for (const auto* list : {&reads_[size_t(x)], &outputs_[size_t(x)]})
      for (int64_t id : *list) {
        tensor_map[size_t(id)] = 0;
        first_touch.try_emplace(Key(id), x);
      }
    if (call_.ops[size_t(x)].node >= 0) node_map[size_t(call_.ops[size_t(x)].node)] = 0;
  }
  // A value at the end of the call still says something when the cut makes
  // every write to that memory from its first kept touch on.
  std::vector<const Value*> ends;
  for (const Value* v : end_values_) {
    if (tensor_map[size_t(v->tensor)] < 0) continue;
    const int64_t key = Key(v->tensor);
    bool whole = true;
    auto w = writes_.find(key);
    if (w != writes_.end())
      for (int64_t x : w->second)
        if (x >= first_touch[key] && !in[size_t(x)]) whole = false;
    if (whole) ends.push_back(v);
  }
  int64_t next = 0;
  for (size_t id = 0; id < tensor_map.size(); ++id)
    if (tensor_map[id] == 0) tensor_map[id] = next++;
  for (size_t id = 0; id < tensor_map.size(); ++id)
    if (tensor_map[id] >= 0 && call_.tensors[id].storage >= 0) storage_map[size_t(call_.tensors[id].storage)] = 0;
  next = 0;
  for (int64_t& s : storage_map)
    if (s == 0) s = next++;
  next = 0;
  for (int64_t& n : node_map)
    if (n == 0) n = next++;
  auto tensor = [&](int64_t id) { return id < 0 ? int64_t(-1) : tensor_map[size_t(id)]; };
  auto remap_arg = [&](Arg* a, auto&& self) -> void {
    if (a->kind == Arg::Kind::kTensor && a->tensor >= 0) a->tensor = tensor(a->tensor);
    if (a->kind == Arg::Kind::kTensorList)
      for (int64_t& id : a->ints) id = tensor(id);
    if (a->kind == Arg::Kind::kList)
      for (Arg& item : a->items) self(&item, self);
  };

  Call c;
  c.index = call_.index;
  c.api = call_.api;
  c.create_graph = call_.create_graph;
  c.keep_graph = call_.keep_graph;
  c.duration_us = 0;
  c.start_unix_s = call_.start_unix_s;
  c.value_source = call_.value_source;
  for (size_t s = 0; s < storage_map.size(); ++s) {
    if (storage_map[s] < 0) continue;
    StorageInfo info = call_.storages[s];
    info.id = storage_map[s];
    c.storages.push_back(info);
  }
  if (tensor_origin) tensor_origin->clear();
  for (size_t id = 0; id < tensor_map.size(); ++id) {
    if (tensor_map[id] < 0) continue;
    if (tensor_origin) tensor_origin->push_back(int64_t(id));
    TensorInfo info = call_.tensors[id];
    info.id = tensor_map[id];
    if (info.storage >= 0) info.storage = storage_map[size_t(info.storage)];
    c.tensors.push_back(std::move(info));
  }
  // Nodes keep their types, hooks and timing; edges to nodes left out
  // lead nowhere, and the leaves' tensors left out are forgotten.
  std::vector<std::pair<int64_t, int64_t>> order;  // (exec_order, new id) of executed nodes
  for (size_t id = 0; id < node_map.size(); ++id) {
    if (node_map[id] < 0) continue;
    Node n = call_.nodes[id];
    n.id = node_map[id];
    for (Edge& e : n.next)
      if (e.node >= 0) {
        e.node = node_map[size_t(e.node)];
        if (e.node < 0) e.input = 0;
      }
    std::vector<int64_t> grads;
    for (int64_t g : n.grads_in)
      if (tensor(g) >= 0) grads.push_back(tensor(g));
    n.grads_in = std::move(grads);
    if (n.leaf) {
      n.leaf->tensor = tensor(n.leaf->tensor);
      n.leaf->grad_before = tensor(n.leaf->grad_before);
      n.leaf->grad_after = tensor(n.leaf->grad_after);
    }
    if (n.executed) order.push_back({n.exec_order, n.id});
    c.nodes.push_back(std::move(n));
  }
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) c.nodes[size_t(order[i].second)].exec_order = int64_t(i);
  for (int64_t root : call_.roots)
    if (node_map[size_t(root)] >= 0) c.roots.push_back(node_map[size_t(root)]);

  std::vector<int64_t> op_map(call_.ops.size(), -1);
  if (op_origin) op_origin->clear();
  for (int64_t x : ops) {
    Op op = call_.ops[size_t(x)];
    op_map[size_t(x)] = int64_t(c.ops.size());
    op.index = int64_t(c.ops.size());
    if (op.node >= 0) op.node = node_map[size_t(op.node)];
    for (Arg& a : op.args) remap_arg(&a, remap_arg);
    for (Arg& a : op.outputs) remap_arg(&a, remap_arg);
    c.duration_us += op.duration_us;
    c.ops.push_back(std::move(op));
    if (op_origin) op_origin->push_back(x);
  }

  for (const auto& [id, value] : inputs) {
    if (!value) continue;
    Value v = *value;
    v.tensor = tensor(id);
    v.when = Value::When::kFirstUse;
    v.op = -1;
    c.values.push_back(std::move(v));
  }
  for (const Value* value : after_values_) {
    if (!in[size_t(value->op)] || tensor(value->tensor) < 0) continue;
    Value v = *value;
    v.tensor = tensor(v.tensor);
    v.op = op_map[size_t(v.op)];
    c.values.push_back(std::move(v));
  }
  for (const Value* value : ends) {
    Value v = *value;
    v.tensor = tensor(v.tensor);
    c.values.push_back(std::move(v));
  }
  *out = std::move(c);
  return true;
}

}  // namespace cautograd
