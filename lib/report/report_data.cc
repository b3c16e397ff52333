// ReportData: the one JSON document the report's page reads. Its shape is
// documented in docs/report.md ("The data"); lib/report/assets/report.js is
// its only reader. Arrays rather than objects where a call has thousands of
// them (nodes, ops, tensors), so a 5,000-node report stays a few MB.
#include <map>
#include <set>

#include "lib/diff/render.h"
#include "lib/recompile/ca_cache.h"
#include "lib/recompile/sim_json.h"
#include "lib/report/dot_text.h"
#include "lib/report/graph_view.h"
#include "lib/report/report.h"

namespace cautograd {

using json = nlohmann::json;

namespace {

json ArgJson(const std::string& name, const Arg& arg) {
  json ids = json::array();
  ForEachTensor(arg, [&](int64_t id) { ids.push_back(id); });
  return json::array({name, ArgText(arg), ids});
}

json NodeJson(const Node& n) {
  json j = {{"id", n.id}, {"type", n.type}, {"label", NodeLabel(n)}, {"exec", n.executed ? n.exec_order : -1},
            {"start", n.start_us}, {"dur", n.duration_us}, {"topo", n.topo}};
  j["seq"] = n.seq_is_max ? json("max") : json(n.seq);
  json inputs = json::array();
  for (const InputMeta& in : n.inputs) inputs.push_back({in.shape, in.dtype, in.device});
  j["inputs"] = inputs;
  json next = json::array();
  for (const Edge& e : n.next) next.push_back({e.node, e.input});
  j["next"] = next;
  if (!n.hooks.empty()) {
    json hooks = json::array();
    for (const Hook& h : n.hooks) hooks.push_back({HookKindName(h.kind), h.lang, h.type});
    j["hooks"] = hooks;
  }
  if (n.leaf) {
    const LeafInfo& l = *n.leaf;
    j["leaf"] = {{"tensor", l.tensor},       {"name", l.name},
                 {"shape", l.shape},         {"dtype", l.dtype},
                 {"grad_before", l.grad_before}, {"grad_after", l.grad_after}};
  }
  if (!n.grads_in.empty()) j["grads_in"] = n.grads_in;
  return j;
}

// [index, label, node, phase, thread, start, dur, args, outputs]
json OpJson(const Op& op) {
  json args = json::array();
  for (size_t i = 0; i < op.args.size(); ++i)
    args.push_back(ArgJson(i < op.arg_names.size() ? op.arg_names[i] : "#" + std::to_string(i), op.args[i]));
  json outputs = json::array();
  for (size_t i = 0; i < op.outputs.size(); ++i) outputs.push_back(ArgJson(std::to_string(i), op.outputs[i]));
  return json::array({op.index, OpLabel(op), op.node, PhaseName(op.phase), op.thread, op.start_us, op.duration_us,
                      args, outputs});
}

// [id, shape, strides, offset, dtype, device, storage, roles, name, layout, requires_grad]
json TensorJson(const TensorInfo& t) {
  return json::array({t.id, t.shape, t.strides, t.offset, t.dtype, t.device, t.storage, RoleNames(t.roles), t.name,
                      t.layout, t.requires_grad});
}

json GuardsJson(const Guards& g) {
  json tensors = json::array(), scalars = json::array(), sizes = json::array();
  for (const GuardTensor& t : g.tensors)
    tensors.push_back({t.node, t.tensor, t.role, t.dtype, t.device, t.requires_grad, t.defined});
  for (const GuardScalar& s : g.scalars) scalars.push_back({s.node, s.op, s.arg, s.value});
  for (const GuardSize& s : g.sizes) sizes.push_back({s.node, s.tensor, s.role, s.what, s.op, s.dim, s.value});
  return {{"tensors", tensors}, {"scalars", scalars}, {"sizes", sizes}};
}

json CompiledAutogradJson(const CompiledAutogradKey& ca) {
  json j = {{"ran", CaRanName(ca.ran)}};
  if (!ca.present()) return j;
  json nodes = json::array();
  for (const CaNode& n : ca.nodes) {
    json sizes = json::array();
    for (const CaSize& s : n.sizes) sizes.push_back({s.value, s.forced_static, CaSizeOriginName(s.origin), s.edge, s.dim});
    nodes.push_back({{"node", n.node}, {"id", n.id}, {"type", n.type}, {"needed", n.needed},
                     {"key_size", n.key_size}, {"tensors", n.tensors}, {"scalars", n.scalars},
                     {"hooks", n.hooks}, {"sizes", sizes}});
  }
  j["nodes"] = nodes;
  if (!ca.error.empty()) j["error"] = {{"message", ca.error}, {"at", ca.error_at}};
  return j;
}

json GroupJson(const Call& call, const RepeatGroup& g) {
  json instances = json::array();
  for (const auto& instance : g.instances) {
    json ids = json::array();
    for (int64_t p : instance) ids.push_back(call.nodes[size_t(p)].id);
    instances.push_back(ids);
  }
  return {{"id", g.id}, {"label", g.Label()}, {"count", g.count()}, {"period", g.period}, {"instances", instances}};
}

// One view of a call waiting for its layout: which job draws it, and the
// keys of its boxes in layout order.
struct PendingView {
  size_t job = 0;
  json keys, labels;
};

class LayoutQueue {
 public:
  // The job for this view's graph; views with the same graph (the calls of
  // a training loop, one after another) share one.
  PendingView Add(const GraphView& view) {
    PendingView pending;
    // Past this many edges dot's defaults take seconds at best; below,
    // curved edges are tried first, and bounded effort if they take long.
    constexpr size_t kManyEdges = 1000;
    const bool many = view.edges.size() > kManyEdges;
    std::string dot = LayoutDot(view, many);
    // Views with one graph share a layout only if their parallel edges
    // agree too: the layout carries their counts.
    std::string key = dot;
    for (const ViewEdge& e : view.edges)
      if (e.count > 1) key += std::to_string(e.from) + ">" + std::to_string(e.to) + "x" + std::to_string(e.count) + "\n";
    auto [it, added] = by_dot_.emplace(std::move(key), jobs_.size());
    if (added) {
      LayoutJob job;
      if (!many) job.dot_fast = LayoutDot(view, true);
      job.dot = std::move(dot);
      job.nodes = view.nodes.size();
      jobs_.push_back(std::move(job));
      counts_.push_back(view.edges);
    }
    pending.job = it->second;
    pending.keys = json::array();
    pending.labels = json::array();
    for (const ViewNode& v : view.nodes) {
      pending.keys.push_back(v.key);
      pending.labels.push_back(v.label);
    }
    return pending;
  }

  std::vector<LayoutJob>* jobs() { return &jobs_; }

  // {w, h, nodes: [[x, y, w, h]], edges: [[from, to, count, [points]]]} or
  // {error} per job.
  json LayoutsJson() const {
    json out = json::array();
    for (size_t i = 0; i < jobs_.size(); ++i) {
      const LayoutJob& job = jobs_[i];
      if (!job.err.empty()) {
        out.push_back({{"error", job.err}});
        continue;
      }
      const Layout& l = job.layout;
      json nodes = json::array(), edges = json::array();
      for (const NodeBox& b : l.nodes) nodes.push_back({Round(b.x), Round(b.y), Round(b.w), Round(b.h)});
      std::map<std::pair<int64_t, int64_t>, int64_t> count;
      for (const ViewEdge& e : counts_[i]) count[{e.from, e.to}] = e.count;
      for (const EdgePath& e : l.edges) {
        json points = json::array();
        for (double c : e.points) points.push_back(Round(c));
        edges.push_back({e.from, e.to, count.count({e.from, e.to}) ? count[{e.from, e.to}] : 1, points});
      }
      out.push_back({{"w", Round(l.width)}, {"h", Round(l.height)}, {"nodes", nodes}, {"edges", edges}});
    }
    return out;
  }

 private:
  static double Round(double v) { return double(int64_t(v * 10 + (v < 0 ? -0.5 : 0.5))) / 10; }

  std::map<std::string, size_t> by_dot_;
  std::vector<LayoutJob> jobs_;
  std::vector<std::vector<ViewEdge>> counts_;
};

json ViewJson(const PendingView& v) { return {{"layout", v.job}, {"keys", v.keys}, {"labels", v.labels}}; }

json CallJson(const Call& call, const ReportOptions& options, LayoutQueue* queue) {
  json j = {{"index", call.index},           {"api", call.api},
            {"create_graph", call.create_graph}, {"keep_graph", call.keep_graph},
            {"duration", call.duration_us},  {"start_unix_s", call.start_unix_s},
            {"roots", call.roots}};
  json nodes = json::array(), ops = json::array(), tensors = json::array(), storages = json::array(),
       values = json::array();
  for (const Node& n : call.nodes) nodes.push_back(NodeJson(n));
  for (const Op& op : call.ops) ops.push_back(OpJson(op));
  for (const TensorInfo& t : call.tensors) tensors.push_back(TensorJson(t));
  for (const StorageInfo& s : call.storages) storages.push_back({s.id, s.nbytes, s.device});
  for (const Value& v : call.values) values.push_back({v.tensor, ValueWhenName(v.when), v.op});
  j["nodes"] = nodes;
  j["ops"] = ops;
  j["tensors"] = tensors;
  j["storages"] = storages;
  j["values"] = values;
  j["guards"] = GuardsJson(call.guards);
  j["compiled_autograd"] = CompiledAutogradJson(call.compiled_autograd);

  const std::vector<RepeatGroup> groups = FindRepeats(call);
  json jg = json::array();
  for (const RepeatGroup& g : groups) jg.push_back(GroupJson(call, g));
  j["groups"] = jg;
  if (!options.dot) return j;

  json views;
  views["full"] = ViewJson(queue->Add(BuildView(call, groups, {})));
  if (!groups.empty()) {
    views["collapsed"] = ViewJson(queue->Add(BuildView(call, groups, std::vector<bool>(groups.size(), true))));
    // One group expanded at a time, the rest collapsed: with one group that
    // is the whole graph again. Each costs a layout of most of the graph, so
    // past the largest kMaxExpandViews groups a click expands everything
    // (null: the page shows the full view).
    constexpr size_t kMaxExpandViews = 24;
    json expand = json::array();
    for (const RepeatGroup& g : groups) {
      if (groups.size() == 1) {
        expand.push_back(views["full"]);
        continue;
      }
      if (expand.size() >= kMaxExpandViews) {
        expand.push_back(nullptr);
        continue;
      }
      std::vector<bool> collapsed(groups.size(), true);
      collapsed[size_t(g.id)] = false;
      expand.push_back(ViewJson(queue->Add(BuildView(call, groups, collapsed))));
    }
    views["expand"] = expand;
  }
  j["views"] = views;
  j["opens"] = !groups.empty() && int64_t(call.nodes.size()) > options.open_collapsed_above ? "collapsed" : "full";
  return j;
}

json MetaJson(const Trace& trace) {
  const Meta& m = trace.meta;
  json j = {{"version", trace.version}, {"tool_version", m.tool_version}, {"libtorch_version", m.libtorch_version},
            {"command", m.command},     {"time", m.time},                 {"host", m.host},
            {"values", ValuesModeName(m.values)}};
  if (m.seed) j["seed"] = *m.seed;
  return j;
}

json RecompileJson(const ReportTrace& t) {
  std::vector<CacheCall> calls;
  for (const Call& call : t.trace->calls) calls.push_back({t.name, &call});
  size_t eager = 0;
  calls = CallsTheCacheSaw(std::move(calls), &eager);
  const CacheSimulation sim =
      HaveRealKeys(calls) ? SimulateRealCache(calls, DynamicMode::kAuto) : SimulateCache(calls, DynamicMode::kAuto);
  json j = SimulationJson(sim, {t.name});
  j["eager_left_out"] = eager;
  return j;
}

}  // namespace

bool BuildReportData(const std::vector<ReportTrace>& traces, const ReportOptions& options, json* data,
                     std::string* err) {
  LayoutQueue queue;
  json jt = json::array();
  for (size_t t = 0; t < traces.size(); ++t) {
    const Trace& trace = *traces[t].trace;
    json calls = json::array(), skipped = json::array();
    for (size_t c = 0; c < trace.calls.size(); ++c) {
      calls.push_back(CallJson(trace.calls[c], options, &queue));
      if (options.progress) options.progress("reading calls", c + 1, trace.calls.size());
    }
    for (const SkippedCall& s : trace.skipped)
      skipped.push_back({{"program_call", s.program_call}, {"process", s.process}, {"reason", s.reason}});
    jt.push_back({{"name", traces[t].name}, {"meta", MetaJson(trace)}, {"calls", calls}, {"skipped", skipped},
                  {"recompile", RecompileJson(traces[t])}});
  }
  if (options.dot)
    RunLayouts(*options.dot, queue.jobs(), options.parallel, [&](size_t done, size_t total) {
      if (options.progress) options.progress("laying out graphs", done, total);
    });
  *data = {{"format", 1}, {"tool", std::string("cautograd ") + kToolVersion}, {"traces", jt},
           {"layouts", queue.LayoutsJson()}, {"graph_note", options.dot ? "" : options.no_dot_reason}};
  if (traces.size() == 2) {
    TraceDiff diff;
    if (!DiffTraces(*traces[0].trace, *traces[1].trace, options.diff, &diff, err)) return false;
    // `diff --format json`'s object: one schema for the page and for tools.
    RenderOptions render;
    render.a_name = traces[0].name;
    render.b_name = traces[1].name;
    (*data)["diff"] = json::parse(RenderJson(diff, render));
  }
  return true;
}

}  // namespace cautograd
