#include "lib/report/chrome_trace.h"

#include <algorithm>
#include <cmath>
#include <map>


namespace cautograd {

using json = nlohmann::json;

namespace {

// A time from the trace, which may be hostile: NaN or infinity as 0, so
// that ordering and clamping stay defined.
double Finite(double v) { return std::isfinite(v) ? v : 0; }

struct Span {
  double start = 0, end = 0;
  json event;  // without ts and dur
  std::vector<Span> children;
};

// Orders spans by start and makes them disjoint and inside [lo, hi]:
// what the viewers need to draw them on one track.
void Clamp(std::vector<Span>* spans, double lo, double hi) {
  std::stable_sort(spans->begin(), spans->end(), [](const Span& a, const Span& b) { return a.start < b.start; });
  double floor = lo;
  for (Span& s : *spans) {
    s.start = std::clamp(s.start, floor, hi);
    s.end = std::clamp(s.end, s.start, hi);
    floor = s.end;
    Clamp(&s.children, s.start, s.end);
  }
}

void Emit(const std::vector<Span>& spans, double offset, json* events) {
  for (const Span& s : spans) {
    json e = s.event;
    e["ts"] = offset + s.start;
    e["dur"] = s.end - s.start;
    events->push_back(std::move(e));
    Emit(s.children, offset, events);
  }
}

json ShapesJson(const std::map<int64_t, const TensorInfo*>& tensors, const Op& op) {
  json shapes = json::array(), dtypes = json::array();
  for (const Arg& a : op.args) {
    if (a.kind != Arg::Kind::kTensor) continue;
    auto it = tensors.find(a.tensor);
    if (it == tensors.end()) {
      shapes.push_back(nullptr);
      dtypes.push_back(nullptr);
    } else {
      shapes.push_back(it->second->shape);
      dtypes.push_back(it->second->dtype);
    }
  }
  return {{"shapes", shapes}, {"dtypes", dtypes}};
}

}  // namespace

json ChromeTraceJson(const Trace& trace, const std::string& source) {
  json events = json::array();
  double first = 0;
  for (const Call& call : trace.calls)
    if (Finite(call.start_unix_s) > 0 && (first == 0 || call.start_unix_s < first)) first = call.start_unix_s;
  for (const Call& call : trace.calls) {
    const int pid = int(call.index) + 1;
    const double offset = Finite(call.start_unix_s) > 0 && first > 0 ? (call.start_unix_s - first) * 1e6 : 0;
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"name", "call " + std::to_string(call.index) + " (" + call.api + ", " +
                                             std::to_string(call.nodes.size()) + " nodes)"}}}});
    events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", pid}, {"tid", 0},
                      {"args", {{"sort_index", pid}}}});
    std::map<int64_t, const TensorInfo*> tensors;
    for (const TensorInfo& t : call.tensors) tensors.emplace(t.id, &t);
    std::map<int64_t, size_t> node_at;
    for (size_t i = 0; i < call.nodes.size(); ++i) node_at.emplace(call.nodes[i].id, i);
    // A node runs on the thread its own ops ran on; one without ops on the
    // thread of the engine's first op, or 0.
    std::vector<int> node_thread(call.nodes.size(), call.ops.empty() ? 0 : call.ops.front().thread);
    std::vector<char> thread_known(call.nodes.size(), 0);
    for (const Op& op : call.ops) {
      auto it = node_at.find(op.node);
      if (it == node_at.end() || op.phase != Op::Phase::kNode || thread_known[it->second]) continue;
      node_thread[it->second] = op.thread;
      thread_known[it->second] = 1;
    }
    std::map<int, std::vector<Span>> tracks;
    std::map<size_t, std::pair<int, size_t>> span_of;  // node position -> (thread, index in its track)
    for (size_t i = 0; i < call.nodes.size(); ++i) {
      const Node& n = call.nodes[i];
      if (!n.executed) continue;
      Span s;
      s.start = Finite(n.start_us);
      s.end = s.start + std::max(0.0, Finite(n.duration_us));
      s.event = {{"ph", "X"}, {"cat", "node"}, {"name", n.type}, {"pid", pid}, {"tid", node_thread[i]},
                 {"args", {{"node", n.id}, {"exec_order", n.exec_order}}}};
      s.event["args"]["sequence_nr"] = n.seq_is_max ? json("UINT64_MAX") : json(n.seq);
      if (n.leaf && !n.leaf->name.empty()) s.event["args"]["leaf"] = n.leaf->name;
      auto& track = tracks[node_thread[i]];
      span_of[i] = {node_thread[i], track.size()};
      track.push_back(std::move(s));
    }
    for (const Op& op : call.ops) {
      Span s;
      s.start = Finite(op.start_us);
      s.end = s.start + std::max(0.0, Finite(op.duration_us));
      s.event = {{"ph", "X"}, {"cat", "op"}, {"name", OpLabel(op)}, {"pid", pid}, {"tid", op.thread}};
      json args = ShapesJson(tensors, op);
      args["op"] = op.index;
      args["phase"] = PhaseName(op.phase);
      if (op.node >= 0) args["node"] = op.node;
      s.event["args"] = args;
      auto it = node_at.find(op.node);
      auto sp = it == node_at.end() ? span_of.end() : span_of.find(it->second);
      if (op.phase == Op::Phase::kNode && sp != span_of.end() && sp->second.first == op.thread)
        tracks[op.thread][sp->second.second].children.push_back(std::move(s));
      else
        tracks[op.thread].push_back(std::move(s));
    }
    for (auto& [thread, spans] : tracks) {
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", thread},
                        {"args", {{"name", "autograd thread " + std::to_string(thread)}}}});
      const double duration = Finite(call.duration_us);
      Clamp(&spans, 0, duration > 0 ? duration : 1e300);
      Emit(spans, offset, &events);
    }
  }
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData", {{"source", source}, {"tool", std::string("cautograd ") + kToolVersion},
                         {"libtorch", trace.meta.libtorch_version}}}};
}

}  // namespace cautograd
