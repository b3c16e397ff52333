#include "lib/diff/diff.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "lib/diff/align.h"
#include "lib/diff/match.h"
#include "lib/trace/guards.h"
#include "lib/trace/trace_io.h"
#include "lib/trace/value_data.h"

namespace cautograd {

namespace {

// Tiers of graph differences, most important first.
constexpr double kTierNodes = 3;   // calls or nodes added, removed, retyped
constexpr double kTierWiring = 2;  // edges, whether a node runs, how a call was made
constexpr double kTierHooks = 1;
constexpr double kTierNames = 0;

constexpr const char* kGroupNames[] = {"graph", "numerics", "guards", "ops", "timing"};

NodeRef RefOf(const Call& call, int64_t id) {
  NodeRef r;
  if (id < 0) return r;
  const Node& n = call.nodes[size_t(id)];
  r.id = id;
  r.node_call = n.exec_order;
  r.type = n.type;
  if (n.leaf) r.leaf = n.leaf->name;
  return r;
}

OpRef OpRefOf(const Call& call, int64_t index) {
  OpRef r;
  if (index < 0) return r;
  r.index = index;
  r.label = OpLabel(call.ops[size_t(index)]);
  r.phase = call.ops[size_t(index)].phase;
  return r;
}

// "float32[2, 4]", with the device where it is not the CPU: what a tensor is
// to an op, without its id (ids differ between recordings).
std::string TensorMetaText(const Call& call, int64_t id) {
  if (id < 0) return "undefined";
  const TensorInfo& t = call.tensors[size_t(id)];
  std::string out = t.dtype + "[";
  for (size_t d = 0; d < t.shape.size(); ++d) out += (d ? ", " : "") + std::to_string(t.shape[d]);
  out += "]";
  if (t.device != "cpu") out += " on " + t.device;
  return out;
}

// An argument as diff compares it: tensors by metadata, the rest by value.
std::string ArgMetaText(const Call& call, const Arg& a) {
  switch (a.kind) {
    case Arg::Kind::kTensor:
      return TensorMetaText(call, a.tensor);
    case Arg::Kind::kTensorList: {
      std::string out = "[";
      for (size_t i = 0; i < a.ints.size(); ++i) out += (i ? ", " : "") + TensorMetaText(call, a.ints[i]);
      return out + "]";
    }
    case Arg::Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < a.items.size(); ++i) out += (i ? ", " : "") + ArgMetaText(call, a.items[i]);
      return out + "]";
    }
    default:
      return ArgText(a);
  }
}

std::vector<int64_t> TensorsOf(const Arg& a) {
  std::vector<int64_t> ids;
  ForEachTensor(a, [&](int64_t id) { ids.push_back(id); });
  return ids;
}

std::string HookText(const Hook& h) { return h.lang + " " + HookKindName(h.kind) + " (" + h.type + ")"; }

// Where a tensor's values were recorded, for one call.
class ValueIndex {
 public:
  explicit ValueIndex(const Call& call) {
    for (size_t i = 0; i < call.values.size(); ++i) {
      const Value& v = call.values[i];
      switch (v.when) {
        case Value::When::kFirstUse:
          first_use_.emplace(v.tensor, &v);
          break;
        case Value::When::kAfterOp:
          after_op_.emplace(Key(v.op, v.tensor), &v);
          break;
        case Value::When::kEnd:
          end_.emplace(v.tensor, &v);
          break;
      }
    }
  }
  const Value* FirstUse(int64_t tensor) const { return Find(first_use_, tensor); }
  const Value* AfterOp(int64_t op, int64_t tensor) const { return Find(after_op_, Key(op, tensor)); }
  const Value* End(int64_t tensor) const { return Find(end_, tensor); }
  bool empty() const { return first_use_.empty() && after_op_.empty() && end_.empty(); }

 private:
  static uint64_t Key(int64_t op, int64_t tensor) { return uint64_t(op) << 32 ^ uint64_t(tensor); }
  template <typename M, typename K>
  static const Value* Find(const M& map, K key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : it->second;
  }
  std::unordered_map<int64_t, const Value*> first_use_, end_;
  std::unordered_map<uint64_t, const Value*> after_op_;
};

class CallDiffer {
 public:
  CallDiffer(const Call& a, const Call& b, const DiffOptions& options, TraceDiff* out)
      : a_(a), b_(b), options_(options), out_(out) {}

  void Run() {
    m_ = MatchCalls(a_, b_);
    CallPairSummary s;
    s.call_a = a_.index;
    s.call_b = b_.index;
    s.nodes_a = int64_t(a_.nodes.size());
    s.nodes_b = int64_t(b_.nodes.size());
    for (size_t i = 0; i < a_.nodes.size(); ++i) s.nodes_matched += m_.Same(int64_t(i));
    s.ops_a = int64_t(a_.ops.size());
    s.ops_b = int64_t(b_.ops.size());
    for (int64_t j : m_.op_a_to_b) s.ops_matched += j >= 0;
    s.exact_match = m_.exact;
    summary_ = &s;
    Graph();
    Guards();
    Ops();
    Numerics();
    if (options_.timing) Timing();
    out_->calls.push_back(s);
  }

 private:
  Difference Make(DiffGroup group, const std::string& kind, int64_t node_a, int64_t node_b) const {
    Difference d;
    d.group = group;
    d.kind = kind;
    d.call_a = a_.index;
    d.call_b = b_.index;
    d.node_a = RefOf(a_, node_a);
    d.node_b = RefOf(b_, node_b);
    return d;
  }

  void Add(Difference d) { out_->differences.push_back(std::move(d)); }

  // Node ids of a call: executed ones in execution order, then the rest.
  static std::vector<int64_t> NodeOrder(const Call& call) {
    std::vector<int64_t> order;
    for (const Node* n : ExecutedNodes(call)) order.push_back(n->id);
    for (const Node& n : call.nodes)
      if (!n.executed) order.push_back(n.id);
    return order;
  }

  // --- graph -----------------------------------------------------------------

  void Graph() {
    std::vector<Change> how;
    if (a_.api != b_.api) how.push_back({"api", a_.api, b_.api});
    if (a_.create_graph != b_.create_graph)
      how.push_back({"create_graph", a_.create_graph ? "true" : "false", b_.create_graph ? "true" : "false"});
    if (!how.empty()) {
      Difference d = Make(DiffGroup::kGraph, "call_changed", -1, -1);
      d.changes = how;
      d.weight = kTierWiring;
      Add(d);
    }
    for (int64_t x : NodeOrder(a_)) {
      const int64_t y = m_.node_a_to_b[size_t(x)];
      if (y < 0) {
        Difference d = Make(DiffGroup::kGraph, "node_removed", x, -1);
        d.weight = kTierNodes;
        Add(d);
      } else if (m_.retyped_a[size_t(x)]) {
        Difference d = Make(DiffGroup::kGraph, "node_retyped", x, y);
        d.changes.push_back({"type", a_.nodes[size_t(x)].type, b_.nodes[size_t(y)].type});
        d.weight = kTierNodes;
        Add(d);
      } else {
        SameNode(x, y);
      }
    }
    for (int64_t y : NodeOrder(b_)) {
      if (m_.node_b_to_a[size_t(y)] >= 0) continue;
      Difference d = Make(DiffGroup::kGraph, "node_added", -1, y);
      d.weight = kTierNodes;
      Add(d);
    }
  }

  void SameNode(int64_t x, int64_t y) {
    const Node& na = a_.nodes[size_t(x)];
    const Node& nb = b_.nodes[size_t(y)];
    if (na.executed != nb.executed) {
      Difference d = Make(DiffGroup::kGraph, "node_runs", x, y);
      d.changes.push_back({"runs", na.executed ? "yes" : "no", nb.executed ? "yes" : "no"});
      d.weight = kTierWiring;
      Add(d);
    }
    Edges(x, y);
    Hooks(x, y);
    const std::string name_a = na.leaf ? na.leaf->name : "", name_b = nb.leaf ? nb.leaf->name : "";
    if (name_a != name_b) {
      Difference d = Make(DiffGroup::kGraph, "leaf_renamed", x, y);
      d.changes.push_back({"name", name_a, name_b});
      d.weight = kTierNames;
      Add(d);
    }
  }

  std::string EdgeText(const Call& call, const Edge* e) const {
    if (!e || e->node < 0) return "none";
    const Node& n = call.nodes[size_t(e->node)];
    std::string where =
        n.exec_order >= 0 ? "NodeCall " + std::to_string(n.exec_order) : "a node that did not run";
    return n.type + " (" + where + ") input " + std::to_string(e->input);
  }

  // Next edges that lead elsewhere. An edge to a node that was added or
  // removed follows from that node and is not reported again.
  void Edges(int64_t x, int64_t y) {
    const Node& na = a_.nodes[size_t(x)];
    const Node& nb = b_.nodes[size_t(y)];
    Difference d = Make(DiffGroup::kGraph, "edges", x, y);
    for (size_t k = 0; k < std::max(na.next.size(), nb.next.size()); ++k) {
      const Edge* ea = k < na.next.size() ? &na.next[k] : nullptr;
      const Edge* eb = k < nb.next.size() ? &nb.next[k] : nullptr;
      const int64_t ta = ea ? ea->node : -1, tb = eb ? eb->node : -1;
      if (ta < 0 && tb < 0) continue;
      if ((ta >= 0 && m_.node_a_to_b[size_t(ta)] < 0) || (tb >= 0 && m_.node_b_to_a[size_t(tb)] < 0))
        continue;
      if (ta >= 0 && tb >= 0 && m_.node_a_to_b[size_t(ta)] == tb && ea->input == eb->input) continue;
      d.changes.push_back({"output " + std::to_string(k), EdgeText(a_, ea), EdgeText(b_, eb)});
    }
    if (d.changes.empty()) return;
    d.weight = kTierWiring;
    Add(d);
  }

  // Hooks pair by kind and language in order; a hook object of another type
  // in the same slot is the same hook to compiled autograd and to diff.
  void Hooks(int64_t x, int64_t y) {
    const std::vector<Hook>& ha = a_.nodes[size_t(x)].hooks;
    const std::vector<Hook>& hb = b_.nodes[size_t(y)].hooks;
    if (ha.empty() && hb.empty()) return;
    std::vector<int> ka, kb;
    for (const Hook& h : ha) ka.push_back(int(h.kind) * 2 + (h.lang == "python"));
    for (const Hook& h : hb) kb.push_back(int(h.kind) * 2 + (h.lang == "python"));
    std::vector<bool> kept_a(ha.size()), kept_b(hb.size());
    for (const auto& [i, j] : Align(ka, kb)) kept_a[size_t(i)] = kept_b[size_t(j)] = true;
    for (size_t i = 0; i < ha.size(); ++i) {
      if (kept_a[i]) continue;
      Difference d = Make(DiffGroup::kGraph, "hook_removed", x, y);
      d.changes.push_back({HookKindName(ha[i].kind), HookText(ha[i]), ""});
      d.weight = kTierHooks;
      Add(d);
    }
    for (size_t j = 0; j < hb.size(); ++j) {
      if (kept_b[j]) continue;
      Difference d = Make(DiffGroup::kGraph, "hook_added", x, y);
      d.changes.push_back({HookKindName(hb[j].kind), "", HookText(hb[j])});
      d.weight = kTierHooks;
      Add(d);
    }
  }

  // --- guards ----------------------------------------------------------------

  // b's call looked up in a cache that holds a's: every reason it misses is
  // a difference compiled autograd would recompile for.
  void Guards() {
    const CacheSimulation sim = SimulateCache({{"a", &a_}, {"b", &b_}}, DynamicMode::kAuto);
    const CacheCallResult& second = sim.calls[1];
    summary_->guards_hit = second.hit;
    for (const MissReason& r : second.reasons) {
      const int64_t x = r.node >= 0 ? m_.node_b_to_a[size_t(r.node)] : -1;
      Difference d = Make(DiffGroup::kGuards, ReasonKindName(r.kind), x, r.node);
      d.reason = r;
      d.tensor_b = r.tensor;
      d.op_b = OpRefOf(b_, r.op);
      std::string what =
          r.kind == MissReason::Kind::kSize ? "sizes[" + std::to_string(r.size_index) + "]" : r.field;
      d.changes.push_back({what.empty() ? ReasonKindName(r.kind) : what, r.old_value, r.new_value});
      Add(d);
    }
  }

  // --- ops -------------------------------------------------------------------

  // Whether an op belongs to a node both calls have, or to the engine: only
  // there are ops compared (a new node's ops follow from the node).
  bool Compared(const Op& op, bool side_a) const {
    if (op.node < 0) return true;
    if (side_a) return m_.Same(op.node);
    const int64_t x = m_.node_b_to_a[size_t(op.node)];
    return x >= 0 && m_.Same(x);
  }

  void Ops() {
    for (const Op& op : a_.ops) {
      if (!Compared(op, true)) continue;
      const int64_t j = m_.op_a_to_b[size_t(op.index)];
      if (j < 0) {
        Difference d =
            Make(DiffGroup::kOps, "op_removed", op.node, op.node >= 0 ? m_.node_a_to_b[size_t(op.node)] : -1);
        d.op_a = OpRefOf(a_, op.index);
        Add(d);
        continue;
      }
      std::vector<Change> changes = CompareOps(op, b_.ops[size_t(j)]);
      if (changes.empty()) continue;
      Difference d = Make(DiffGroup::kOps, "op_changed", op.node, b_.ops[size_t(j)].node);
      d.op_a = OpRefOf(a_, op.index);
      d.op_b = OpRefOf(b_, j);
      d.changes = std::move(changes);
      Add(d);
    }
    for (const Op& op : b_.ops) {
      if (!Compared(op, false) || m_.op_b_to_a[size_t(op.index)] >= 0) continue;
      Difference d =
          Make(DiffGroup::kOps, "op_added", op.node >= 0 ? m_.node_b_to_a[size_t(op.node)] : -1, op.node);
      d.op_b = OpRefOf(b_, op.index);
      Add(d);
    }
  }

  std::vector<Change> CompareOps(const Op& x, const Op& y) const {
    std::vector<Change> changes;
    auto compare = [&](const std::vector<Arg>& xs, const std::vector<Arg>& ys,
                       const std::vector<std::string>& names_x, const std::vector<std::string>& names_y,
                       const std::string& prefix) {
      for (size_t k = 0; k < std::max(xs.size(), ys.size()); ++k) {
        const std::string was = k < xs.size() ? ArgMetaText(a_, xs[k]) : "";
        const std::string is = k < ys.size() ? ArgMetaText(b_, ys[k]) : "";
        if (was == is) continue;
        std::string name = k < names_x.size() ? names_x[k] : k < names_y.size() ? names_y[k] : "";
        changes.push_back({name.empty() ? prefix + std::to_string(k) : name, was, is});
      }
    };
    compare(x.args, y.args, x.arg_names, y.arg_names, "argument ");
    compare(x.outputs, y.outputs, {}, {}, "output ");
    return changes;
  }

  // --- numerics --------------------------------------------------------------

  void Numerics() {
    const ValueIndex va(a_), vb(b_);
    if (va.empty() || vb.empty()) return;
    std::unordered_set<int64_t> inputs_seen;  // a's tensors compared as inputs
    first_ = -1;
    for (const Op& op : a_.ops) {
      const int64_t j = m_.op_a_to_b[size_t(op.index)];
      if (j < 0) continue;
      const Op& other = b_.ops[size_t(j)];
      for (size_t k = 0; k < op.args.size() && k < other.args.size(); ++k) {
        const std::vector<int64_t> ta = TensorsOf(op.args[k]), tb = TensorsOf(other.args[k]);
        const std::string name = k < op.arg_names.size() ? op.arg_names[k] : "argument " + std::to_string(k);
        for (size_t t = 0; t < ta.size() && t < tb.size(); ++t) {
          if (!inputs_seen.insert(ta[t]).second) continue;
          Compare(va.FirstUse(ta[t]), vb.FirstUse(tb[t]), ta[t], tb[t], op.node, op.index, j,
                  "argument '" + name + "'", 2 * op.index);
        }
      }
      for (size_t k = 0; k < op.outputs.size() && k < other.outputs.size(); ++k) {
        const std::vector<int64_t> ta = TensorsOf(op.outputs[k]), tb = TensorsOf(other.outputs[k]);
        for (size_t t = 0; t < ta.size() && t < tb.size(); ++t)
          Compare(va.AfterOp(op.index, ta[t]), vb.AfterOp(j, tb[t]), ta[t], tb[t], op.node, op.index, j,
                  "output " + std::to_string(k), 2 * op.index + 1);
      }
    }
    for (const Node& n : a_.nodes) {
      if (!n.leaf || !m_.Same(n.id)) continue;
      const Node& other = b_.nodes[size_t(m_.node_a_to_b[size_t(n.id)])];
      if (!other.leaf) continue;
      Compare(va.End(n.leaf->grad_after), vb.End(other.leaf->grad_after), n.leaf->grad_after,
              other.leaf->grad_after, n.id, -1, -1, "final .grad", std::numeric_limits<int64_t>::max());
    }
    if (first_ >= 0) out_->differences[size_t(first_)].first_divergence = true;
  }

  // Compares a's value of a tensor with b's; `order` places it in a's op
  // order, to find the first divergence.
  void Compare(const Value* x, const Value* y, int64_t ta, int64_t tb, int64_t node_a, int64_t op_a,
               int64_t op_b, const std::string& place, int64_t order) {
    if (!x || !y) return;
    if (x->numel != y->numel || a_.tensors[size_t(ta)].shape != b_.tensors[size_t(tb)].shape) {
      ++summary_->values_not_comparable;
      return;
    }
    std::vector<double> ex, ey;
    if (!ValueElements(*x, &ex) || !ValueElements(*y, &ey) || ex.size() != ey.size()) {
      ++summary_->values_not_comparable;
      return;
    }
    ++summary_->values_compared;
    // Between two dtypes, the looser tolerance: a float32 run and a float64
    // run agree as far as float32 can tell.
    const Tolerance t1 = ResolveTolerance(x->dtype, options_.rtol, options_.atol);
    const Tolerance t2 = ResolveTolerance(y->dtype, options_.rtol, options_.atol);
    ValueDifference v;
    v.tolerance = {std::max(t1.rtol, t2.rtol), std::max(t1.atol, t2.atol)};
    v.dtype = x->dtype == y->dtype ? x->dtype : x->dtype + " -> " + y->dtype;
    v.numel = x->numel;
    for (size_t i = 0; i < ex.size(); ++i) {
      const double was = ex[i], is = ey[i];
      if (WithinTolerance(is, was, v.tolerance)) {
        if (is != was && !std::isnan(was)) {
          v.max_abs = std::max(v.max_abs, std::fabs(is - was));
          if (was != 0) v.max_rel = std::max(v.max_rel, std::fabs(is - was) / std::fabs(was));
        }
        continue;
      }
      ++v.beyond;
      const double abs = std::fabs(is - was);
      const double bound = v.tolerance.atol + v.tolerance.rtol * std::fabs(was);
      const double excess = std::isnan(abs) || std::isinf(abs) || bound == 0 ? INFINITY : abs / bound;
      v.max_abs = std::isnan(abs) ? INFINITY : std::max(v.max_abs, abs);
      if (was != 0 && !std::isnan(abs)) v.max_rel = std::max(v.max_rel, abs / std::fabs(was));
      if (v.beyond == 1 || excess > v.excess) {
        v.excess = excess;
        v.worst_index = int64_t(i);
        v.old_at_worst = was;
        v.new_at_worst = is;
      }
    }
    if (v.beyond == 0) return;
    const int64_t node_b = node_a >= 0 ? m_.node_a_to_b[size_t(node_a)] : -1;
    Difference d = Make(DiffGroup::kNumerics, "values", node_a, node_b);
    d.op_a = OpRefOf(a_, op_a);
    d.op_b = OpRefOf(b_, op_b);
    d.tensor_a = ta;
    d.tensor_b = tb;
    d.tensor = place;
    d.values = v;
    d.weight = v.excess;
    if (first_ < 0 || order < first_order_) {
      first_ = int64_t(out_->differences.size());
      first_order_ = order;
    }
    Add(d);
  }

  // --- timing ----------------------------------------------------------------

  // Slower or faster by more than the threshold and the floor; a faster node
  // is an improvement.
  bool TimeDiffers(double was, double is, Difference* d) const {
    const double factor = 1 + options_.timing_threshold_percent / 100;
    d->old_us = was;
    d->new_us = is;
    if (is - was >= options_.timing_floor_us && is > was * factor) {
      d->weight = was > 0 ? is / was : INFINITY;
      return true;
    }
    if (was - is >= options_.timing_floor_us && was > is * factor) {
      d->improvement = true;
      d->weight = 1 - is / was;  // below every slowdown's ratio
      return true;
    }
    return false;
  }

  void Timing() {
    Difference call = Make(DiffGroup::kTiming, "call_slower", -1, -1);
    if (TimeDiffers(a_.duration_us, b_.duration_us, &call)) {
      if (call.improvement) call.kind = "call_faster";
      Add(call);
    }
    for (const Node* n : ExecutedNodes(a_)) {
      if (!m_.Same(n->id)) continue;
      const Node& other = b_.nodes[size_t(m_.node_a_to_b[size_t(n->id)])];
      if (!other.executed) continue;
      Difference d = Make(DiffGroup::kTiming, "node_slower", n->id, other.id);
      if (!TimeDiffers(n->duration_us, other.duration_us, &d)) continue;
      if (d.improvement) d.kind = "node_faster";
      Add(d);
    }
  }

  const Call& a_;
  const Call& b_;
  const DiffOptions& options_;
  TraceDiff* out_;
  CallMatch m_;
  CallPairSummary* summary_ = nullptr;
  int64_t first_ = -1;  // index in out_->differences of the first divergence
  int64_t first_order_ = 0;
};

std::string ValuesNote(const char* side, ValuesMode mode) {
  if (mode == ValuesMode::kAll) return "";
  if (mode == ValuesMode::kInputs)
    return std::string("numerics: ") + side +
           " trace holds its calls' inputs and final gradients only (recorded with --values inputs): "
           "final gradients are compared, op outputs are not; record both with --values all to find "
           "the first op that differs";
  return std::string("numerics: ") + side + " trace holds " +
         (mode == ValuesMode::kNone ? "no values" : "values of integer tensors only") +
         " (recorded with --values " + ValuesModeName(mode) +
         "): gradients are not compared; record both with --values all";
}

}  // namespace

const char* DiffGroupName(DiffGroup group) { return kGroupNames[size_t(group)]; }

bool ParseGroupSet(const std::string& text, GroupSet* set, std::string* bad) {
  *set = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string name = text.substr(start, end - start);
    bool known = false;
    if (name == "all") {
      for (DiffGroup g : kDiffGroups) *set |= GroupBit(g);
      known = true;
    } else if (name == "none") {
      known = true;
    }
    for (DiffGroup g : kDiffGroups) {
      if (name == DiffGroupName(g)) {
        *set |= GroupBit(g);
        known = true;
      }
    }
    if (!known) {
      *bad = name;
      return false;
    }
    start = end + 1;
  }
  return true;
}

std::vector<std::string> GroupSetNames(GroupSet set) {
  std::vector<std::string> names;
  for (DiffGroup g : kDiffGroups)
    if (set & GroupBit(g)) names.push_back(DiffGroupName(g));
  return names;
}

int64_t TraceDiff::Count(DiffGroup group) const {
  int64_t n = 0;
  for (const Difference& d : differences) n += d.group == group;
  return n;
}

std::vector<const Difference*> TraceDiff::InGroup(DiffGroup group) const {
  std::vector<const Difference*> out;
  for (const Difference& d : differences)
    if (d.group == group) out.push_back(&d);
  return out;
}

bool TraceDiff::Fails(GroupSet fail_on) const {
  for (const Difference& d : differences)
    if ((fail_on & GroupBit(d.group)) && !d.improvement) return true;
  return false;
}

bool ReadTracePair(const std::string& path_a, const std::string& path_b, Trace* a, Trace* b,
                   std::string* err) {
  std::string err_b;
  bool ok_b = false;
  std::thread reader([&] { ok_b = ReadTraceFile(path_b, b, &err_b); });
  const bool ok_a = ReadTraceFile(path_a, a, err);
  reader.join();
  if (ok_a && !ok_b) *err = err_b;
  return ok_a && ok_b;
}

bool DiffTraces(const Trace& a, const Trace& b, const DiffOptions& options, TraceDiff* diff,
                std::string* err) {
  *diff = TraceDiff();
  diff->timing = options.timing;
  std::vector<std::pair<const Call*, const Call*>> pairs;
  if (options.call >= 0) {
    for (const Trace* t : {&a, &b}) {
      if (options.call >= int64_t(t->calls.size())) {
        *err = "no call " + std::to_string(options.call) + " in the " + (t == &a ? "first" : "second") +
               " trace: it has " + std::to_string(t->calls.size()) + " (numbered from 0)";
        return false;
      }
    }
    pairs.emplace_back(&a.calls[size_t(options.call)], &b.calls[size_t(options.call)]);
  } else {
    for (size_t i = 0; i < a.calls.size() && i < b.calls.size(); ++i)
      pairs.emplace_back(&a.calls[i], &b.calls[i]);
  }
  for (const auto& [x, y] : pairs) CallDiffer(*x, *y, options, diff).Run();
  if (options.call < 0) {
    // Calls only one trace has: the program ran backward another number of times.
    for (size_t i = std::min(a.calls.size(), b.calls.size()); i < std::max(a.calls.size(), b.calls.size());
         ++i) {
      Difference d;
      d.kind = i < a.calls.size() ? "call_removed" : "call_added";
      // The call's own index, which --calls may have made differ from its position.
      if (i < a.calls.size())
        d.call_a = a.calls[i].index;
      else
        d.call_b = b.calls[i].index;
      d.weight = kTierNodes;
      diff->differences.push_back(d);
    }
  }
  for (const std::string& note :
       {ValuesNote("the first", a.meta.values), ValuesNote("the second", b.meta.values)})
    if (!note.empty()) diff->notes.push_back(note);
  // Comparing two libtorches is a question of its own ("did the upgrade
  // change my gradients?"); their guards may differ where the key did not.
  if (a.meta.libtorch_version != b.meta.libtorch_version)
    diff->notes.push_back("the traces come from two libtorches: torch " + a.meta.libtorch_version +
                          " and torch " + b.meta.libtorch_version +
                          "; ops and numerics compare what each ran");
  int64_t not_comparable = 0;
  for (const CallPairSummary& s : diff->calls) not_comparable += s.values_not_comparable;
  if (not_comparable > 0)
    diff->notes.push_back("numerics: " + std::to_string(not_comparable) +
                          " recorded values not compared: their tensors' shapes differ (see ops)");
  for (const CallPairSummary& s : diff->calls)
    if (!s.exact_match)
      diff->notes.push_back("graph: calls " + std::to_string(s.call_a) + " and " + std::to_string(s.call_b) +
                            " have so little in common that their nodes were paired greedily");
  std::stable_sort(diff->differences.begin(), diff->differences.end(),
                   [](const Difference& x, const Difference& y) {
                     if (x.group != y.group) return x.group < y.group;
                     return x.weight > y.weight;
                   });
  return true;
}

}  // namespace cautograd
