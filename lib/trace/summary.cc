#include "lib/trace/summary.h"

#include <algorithm>
#include <unordered_map>

namespace cautograd {

namespace {

// Counts by name, most frequent first, ties by name for stable output.
class Counter {
 public:
  void Add(const std::string& name, double time_us) {
    auto [it, inserted] = index_.emplace(name, items_.size());
    if (inserted) items_.push_back({name, 0, 0});
    items_[it->second].count += 1;
    items_[it->second].time_us += time_us;
  }
  std::vector<CountedName> Sorted() && {
    std::sort(items_.begin(), items_.end(), [](const CountedName& a, const CountedName& b) {
      return a.count != b.count ? a.count > b.count : a.name < b.name;
    });
    return std::move(items_);
  }

 private:
  std::unordered_map<std::string, size_t> index_;
  std::vector<CountedName> items_;
};

CallSummary SummarizeCall(const Call& call) {
  CallSummary s;
  s.index = call.index;
  s.api = call.api;
  s.create_graph = call.create_graph;
  s.nodes = int64_t(call.nodes.size());
  s.ops = int64_t(call.ops.size());
  s.tensors = int64_t(call.tensors.size());
  s.storages = int64_t(call.storages.size());
  s.duration_us = call.duration_us;
  Counter types;
  std::vector<CountedName> timed;
  for (const Node& n : call.nodes) {
    if (n.executed) ++s.nodes_executed;
    for (const Edge& e : n.next)
      if (e.node >= 0) ++s.edges;
    for (const Hook& h : n.hooks) s.hooks[HookKindName(h.kind)] += 1;
    if (n.leaf) {
      ++s.leaves;
      if (n.leaf->grad_defined_before) ++s.leaves_with_grad_before;
    }
    types.Add(n.type, n.duration_us);
    if (n.executed) timed.push_back({n.type + " #" + std::to_string(n.id), 1, n.duration_us});
  }
  s.node_types = std::move(types).Sorted();
  std::sort(timed.begin(), timed.end(),
            [](const CountedName& a, const CountedName& b) { return a.time_us > b.time_us; });
  if (timed.size() > 5) timed.resize(5);
  s.slowest_nodes = std::move(timed);
  Counter ops;
  for (const Op& op : call.ops)
    ops.Add(op.overload.empty() ? op.name : op.name + "." + op.overload, op.duration_us);
  s.op_names = std::move(ops).Sorted();
  for (const StorageInfo& st : call.storages) s.tensor_bytes = SaturatingAdd(s.tensor_bytes, st.nbytes);
  s.values = int64_t(call.values.size());
  for (const Value& v : call.values) {
    s.value_bytes = SaturatingAdd(s.value_bytes, v.nbytes());
    if (v.zstd) {
      ++s.values_compressed;
      s.value_bytes_compressed = SaturatingAdd(s.value_bytes_compressed, int64_t(v.stored->size));
      s.value_bytes_compressed_raw = SaturatingAdd(s.value_bytes_compressed_raw, v.nbytes());
    }
  }
  s.guard_nodes = int64_t(call.guards.nodes.size());
  s.guard_tensors = int64_t(call.guards.tensors.size());
  s.guard_scalars = int64_t(call.guards.scalars.size());
  s.guard_sizes = int64_t(call.guards.sizes.size());
  return s;
}

}  // namespace

TraceSummary Summarize(const Trace& trace) {
  TraceSummary s;
  s.meta = trace.meta;
  s.version = trace.version;
  for (const Call& call : trace.calls) s.calls.push_back(SummarizeCall(call));
  s.skipped = trace.skipped;
  return s;
}

}  // namespace cautograd
