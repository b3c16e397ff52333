#include "lib/recompile/cache_sim.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "lib/trace/guards.h"

namespace cautograd {

namespace {

// --- the key of one node -------------------------------------------------

struct LiftedKey {
  std::string role;
  bool defined = true;
  std::string dtype, device;
  bool requires_grad = false;
  // Compiled autograd lifts each distinct tensor once: a tensor lifted again
  // (by another node, or as another role) refers to its first lifting, so
  // which inputs are one tensor is part of the key.
  int64_t same_as = -1;

  auto Tie() const { return std::tie(role, defined, dtype, device, requires_grad, same_as); }
  bool operator==(const LiftedKey& o) const { return Tie() == o.Tie(); }
};

struct ScalarKey {
  int64_t ordinal = 0;  // which of the node's ops
  std::string op, arg, value;

  auto Tie() const { return std::tie(ordinal, op, arg, value); }
  bool operator==(const ScalarKey& o) const { return Tie() == o.Tie(); }
};

struct EdgeKey {
  int64_t target = -1;  // NodeCall of the next node; -1: no edge, -2: a node that did not run
  int64_t input = 0;

  bool operator==(const EdgeKey& o) const { return target == o.target && input == o.input; }
};

struct NodeKey {
  std::string type;
  std::vector<std::string> hooks;
  std::vector<EdgeKey> edges;
  std::vector<LiftedKey> tensors;
  std::vector<ScalarKey> scalars;
  // Where each size input comes from, without its value ("t1.size#0"): the
  // values are checked apart, but how many there are (ranks, list lengths)
  // is part of the key.
  std::vector<std::string> sizes;

  bool operator==(const NodeKey& o) const {
    return type == o.type && hooks == o.hooks && edges == o.edges && tensors == o.tensors &&
           scalars == o.scalars && sizes == o.sizes;
  }
};

// A node of the call being looked up: its key and what the key's parts are
// in this call (so reasons can name tensors and ops).
struct KeyedNode {
  NodeKey key;
  int64_t node = -1;
  std::vector<int64_t> tensors;  // per key.tensors: index in guards.tensors
  std::vector<int64_t> scalars;  // per key.scalars: index in guards.scalars
};

struct KeyedCall {
  const Call* call = nullptr;
  Guards guards;
  std::vector<KeyedNode> nodes;  // by NodeCall
  std::vector<SizeInput> sizes;
  std::vector<int64_t> size_values;
};

// The parameter a node or tensor stands for, where the program named it.
std::string LeafName(const Call& call, const Node& node, int64_t tensor) {
  if (tensor >= 0 && !call.tensors[size_t(tensor)].name.empty()) return call.tensors[size_t(tensor)].name;
  return node.leaf ? node.leaf->name : "";
}

KeyedCall KeyCall(const Call& call) {
  KeyedCall k;
  k.call = &call;
  k.guards = ComputeGuards(call);
  const Guards& g = k.guards;
  std::map<int64_t, int64_t> position;  // node id -> NodeCall
  for (size_t p = 0; p < g.nodes.size(); ++p) position[g.nodes[p].node] = int64_t(p);
  std::vector<int64_t> ordinal(call.ops.size(), -1);  // op -> position among its node's ops
  std::map<int64_t, int64_t> ops_seen;
  for (const Op& op : call.ops)
    if (op.node >= 0 && op.phase == Op::Phase::kNode) ordinal[size_t(op.index)] = ops_seen[op.node]++;

  k.nodes.resize(g.nodes.size());
  for (size_t p = 0; p < g.nodes.size(); ++p) {
    KeyedNode& kn = k.nodes[p];
    kn.node = g.nodes[p].node;
    kn.key.type = g.nodes[p].type;
    kn.key.hooks = g.nodes[p].hook_kinds;
    for (const Edge& e : call.nodes[size_t(kn.node)].next) {
      EdgeKey ek;
      ek.input = e.input;
      if (e.node >= 0) {
        auto it = position.find(e.node);
        ek.target = it == position.end() ? -2 : it->second;
      }
      kn.key.edges.push_back(ek);
    }
  }
  std::map<int64_t, int64_t> first_lift;  // tensor id -> index in guards.tensors
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const GuardTensor& gt = g.tensors[i];
    LiftedKey lk;
    lk.role = gt.role;
    lk.defined = gt.defined;
    lk.dtype = gt.dtype;
    lk.device = gt.device;
    lk.requires_grad = gt.requires_grad;
    if (gt.tensor >= 0) {
      auto [it, fresh] = first_lift.emplace(gt.tensor, int64_t(i));
      if (!fresh) lk.same_as = it->second;
    }
    KeyedNode& kn = k.nodes[size_t(position[gt.node])];
    kn.key.tensors.push_back(lk);
    kn.tensors.push_back(int64_t(i));
  }
  for (size_t i = 0; i < g.scalars.size(); ++i) {
    const GuardScalar& gs = g.scalars[i];
    ScalarKey sk;
    sk.ordinal = ordinal[size_t(gs.op)];
    sk.op = OpLabel(call.ops[size_t(gs.op)]);
    sk.arg = gs.arg;
    sk.value = gs.value;
    KeyedNode& kn = k.nodes[size_t(position[gs.node])];
    kn.key.scalars.push_back(sk);
    kn.scalars.push_back(int64_t(i));
  }
  std::vector<int64_t> in_node(g.nodes.size(), 0);
  for (size_t j = 0; j < g.sizes.size(); ++j) {
    const GuardSize& gs = g.sizes[j];
    const int64_t p = position[gs.node];
    KeyedNode& kn = k.nodes[size_t(p)];
    const Node& node = call.nodes[size_t(gs.node)];
    SizeInput si;
    si.index = int64_t(j);
    si.node_call = p;
    si.node = gs.node;
    si.node_type = node.type;
    si.index_in_node = in_node[size_t(p)]++;
    si.where = gs;
    std::string slot;
    if (gs.op >= 0) {
      si.op_name = OpLabel(call.ops[size_t(gs.op)]);
      slot = "op" + std::to_string(ordinal[size_t(gs.op)]) + ":" + si.op_name + "." + gs.what;
    } else {
      // The tensor's place among the node's lifted tensors: ids differ
      // between calls, places do not.
      int64_t local = 0;
      for (size_t t = 0; t < kn.tensors.size(); ++t) {
        const GuardTensor& gt = g.tensors[size_t(kn.tensors[t])];
        if (gt.tensor == gs.tensor && gt.role == gs.role) local = int64_t(t);
      }
      si.leaf = LeafName(call, node, gs.tensor);
      slot = "t" + std::to_string(local) + "." + gs.what;
    }
    kn.key.sizes.push_back(slot + "#" + std::to_string(gs.dim));
    k.sizes.push_back(std::move(si));
    k.size_values.push_back(gs.value);
  }
  return k;
}

// --- reasons -------------------------------------------------------------

std::string Join(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

std::string EdgesText(const std::vector<EdgeKey>& edges) {
  std::vector<std::string> parts;
  for (const EdgeKey& e : edges) {
    if (e.target == -1)
      parts.push_back("none");
    else if (e.target == -2)
      parts.push_back("a node that did not run");
    else
      parts.push_back("NodeCall " + std::to_string(e.target) + " input " + std::to_string(e.input));
  }
  return "[" + Join(parts) + "]";
}

std::string NewNodeLog(const std::string& type, int64_t node_call) {
  return "Cache miss due to new autograd node: " + type + " (NodeCall " + std::to_string(node_call) + ")";
}

std::string Bool(bool b) { return b ? "True" : "False"; }

class Explainer {
 public:
  Explainer(const KeyedCall& kc, int64_t node_call)
      : kc_(kc), p_(node_call), kn_(kc.nodes[size_t(node_call)]) {}

  // The differences between a cached node's key and this call's node at the
  // same NodeCall, most telling first.
  std::vector<MissReason> Diff(const NodeKey& old) const {
    const NodeKey& now = kn_.key;
    std::vector<MissReason> out;
    if (old.type != now.type) {
      MissReason r = Base(MissReason::Kind::kNodeType);
      r.old_value = old.type;
      r.new_value = now.type;
      out.push_back(r);
      return out;  // the rest of two different nodes' keys cannot be compared
    }
    if (old.hooks != now.hooks) {
      MissReason r = Base(MissReason::Kind::kHooks);
      r.old_value = Join(old.hooks);
      r.new_value = Join(now.hooks);
      out.push_back(r);
    }
    if (!(old.edges == now.edges)) {
      MissReason r = Base(MissReason::Kind::kEdges);
      r.old_value = EdgesText(old.edges);
      r.new_value = EdgesText(now.edges);
      out.push_back(r);
    }
    if (old.tensors.size() != now.tensors.size()) {
      MissReason r = Base(MissReason::Kind::kTensorCount);
      r.old_value = std::to_string(old.tensors.size());
      r.new_value = std::to_string(now.tensors.size());
      out.push_back(r);
    }
    for (size_t i = 0; i < std::min(old.tensors.size(), now.tensors.size()); ++i) {
      const LiftedKey &a = old.tensors[i], &b = now.tensors[i];
      auto field = [&](const char* name, const std::string& was, const std::string& is) {
        if (was == is) return;
        MissReason r = TensorBase(i);
        r.field = name;
        r.old_value = was;
        r.new_value = is;
        out.push_back(r);
      };
      field("role", a.role, b.role);
      field("defined", a.defined ? "defined" : "undefined", b.defined ? "defined" : "undefined");
      if (a.defined && b.defined) {
        field("dtype", a.dtype, b.dtype);
        field("device", a.device, b.device);
        field("requires_grad", Bool(a.requires_grad), Bool(b.requires_grad));
      }
      field("identity", Identity(a.same_as), Identity(b.same_as));
    }
    // A tensor that became defined or undefined explains its own rank
    // changing, and it or a hook added or removed explains the node running
    // other ops (AccumulateGrad assigns an undefined .grad and adds to a
    // defined one; a leaf's hooks run inside it): those follow, and are not
    // reported as reasons of their own.
    std::set<int64_t> flipped;
    for (const MissReason& r : out)
      if (r.kind == MissReason::Kind::kTensor && r.field == "defined") flipped.insert(r.tensor);
    const bool ops_explained = !flipped.empty() || old.hooks != now.hooks;
    std::vector<MissReason> scalars, slots;
    DiffScalars(old, &scalars);
    DiffSizeSlots(old, &slots);
    for (MissReason& r : scalars)
      if (!ops_explained || !r.arg.empty()) out.push_back(std::move(r));
    for (MissReason& r : slots)
      if (!(r.field == "rank" && flipped.count(r.tensor))) out.push_back(std::move(r));
    return out;
  }

  // This call's graph goes on at this NodeCall where the cached graphs ended.
  MissReason Longer() const {
    MissReason r = Base(MissReason::Kind::kNodeType);
    r.new_value = kn_.key.type;
    return r;
  }

 private:
  MissReason Base(MissReason::Kind kind) const {
    MissReason r;
    r.kind = kind;
    r.node = kn_.node;
    r.node_type = kn_.key.type;
    r.node_call = p_;
    const Node& node = kc_.call->nodes[size_t(kn_.node)];
    if (node.leaf) r.leaf = node.leaf->name;
    r.log = NewNodeLog(kn_.key.type, p_);
    return r;
  }

  MissReason TensorBase(size_t local) const {
    MissReason r = Base(MissReason::Kind::kTensor);
    const GuardTensor& gt = kc_.guards.tensors[size_t(kn_.tensors[local])];
    r.tensor = gt.tensor;
    r.role = gt.role;
    if (gt.tensor >= 0 && !kc_.call->tensors[size_t(gt.tensor)].name.empty())
      r.leaf = kc_.call->tensors[size_t(gt.tensor)].name;
    return r;
  }

  static std::string Identity(int64_t same_as) {
    return same_as < 0 ? "a tensor of its own" : "the tensor lifted as input #" + std::to_string(same_as);
  }

  void DiffScalars(const NodeKey& old, std::vector<MissReason>* out) const {
    const auto& was = old.scalars;
    const auto& is = kn_.key.scalars;
    bool aligned = was.size() == is.size();
    for (size_t i = 0; aligned && i < is.size(); ++i)
      aligned = was[i].ordinal == is[i].ordinal && was[i].op == is[i].op && was[i].arg == is[i].arg;
    if (!aligned) {
      // Other ops or arguments: the node ran differently; list both.
      MissReason r = Base(MissReason::Kind::kScalar);
      auto text = [](const std::vector<ScalarKey>& list) {
        std::vector<std::string> parts;
        for (const ScalarKey& s : list) parts.push_back(s.op + " " + s.arg + "=" + s.value);
        return Join(parts);
      };
      r.old_value = text(was);
      r.new_value = text(is);
      out->push_back(r);
      return;
    }
    for (size_t i = 0; i < is.size(); ++i) {
      if (was[i].value == is[i].value) continue;
      MissReason r = Base(MissReason::Kind::kScalar);
      const GuardScalar& gs = kc_.guards.scalars[size_t(kn_.scalars[i])];
      r.op = gs.op;
      r.op_name = is[i].op;
      r.arg = is[i].arg;
      r.old_value = was[i].value;
      r.new_value = is[i].value;
      out->push_back(r);
    }
  }

  // Compares how many size inputs each tensor and argument has.
  void DiffSizeSlots(const NodeKey& old, std::vector<MissReason>* out) const {
    auto count = [](const std::vector<std::string>& slots) {
      std::map<std::string, int64_t> n;
      for (const std::string& s : slots) ++n[s.substr(0, s.rfind('#'))];
      return n;
    };
    std::map<std::string, int64_t> was = count(old.sizes), is = count(kn_.key.sizes);
    std::map<std::string, int64_t> all = was;
    all.insert(is.begin(), is.end());
    for (const auto& [slot, unused] : all) {
      int64_t a = was.count(slot) ? was.at(slot) : 0, b = is.count(slot) ? is.at(slot) : 0;
      if (a == b) continue;
      MissReason r = Base(MissReason::Kind::kSizeCount);
      if (slot[0] == 't') {
        size_t local = size_t(std::stoll(slot.substr(1)));
        if (local < kn_.tensors.size()) {
          r = TensorBase(local);
          r.kind = MissReason::Kind::kSizeCount;
        }
        r.field = "rank";
      } else {
        r.arg = slot.substr(slot.rfind('.') + 1);
        r.op_name = slot.substr(slot.find(':') + 1, slot.rfind('.') - slot.find(':') - 1);
        r.field = "length";
      }
      r.old_value = std::to_string(a);
      r.new_value = std::to_string(b);
      out->push_back(r);
    }
  }

  const KeyedCall& kc_;
  int64_t p_;
  const KeyedNode& kn_;
};

// --- the cache -----------------------------------------------------------

class Cache {
 public:
  explicit Cache(DynamicMode mode) { sim_.mode = mode; }

  void Run(const CacheCall& c) {
    const KeyedCall kc = KeyCall(*c.call);
    const int64_t position = int64_t(sim_.calls.size());
    CacheCallResult r;
    r.source = c.source;
    r.call = c.call->index;
    r.nodes = int64_t(kc.nodes.size());
    r.sizes = int64_t(kc.sizes.size());
    if (position == 0) {
      MissReason first;
      first.kind = MissReason::Kind::kCacheEmpty;
      if (!kc.nodes.empty()) {
        first.node = kc.nodes[0].node;
        first.node_type = kc.nodes[0].key.type;
        first.node_call = 0;
        first.log = NewNodeLog(first.node_type, 0);
      }
      r.reasons.push_back(first);
    }
    size_t at = 0;
    bool new_path = false;
    for (size_t p = 0; p < kc.nodes.size(); ++p) {
      const NodeKey& key = kc.nodes[p].key;
      size_t next = 0;
      for (const auto& [child_key, child] : trie_[at].children)
        if (child_key == key) next = child;
      if (next == 0) {
        if (!new_path && position > 0) r.reasons = Explain(trie_[at], kc, int64_t(p));
        new_path = true;
        next = trie_.size();
        trie_.emplace_back();
        trie_[at].children.emplace_back(key, next);
      }
      at = next;
    }
    if (trie_[at].entries.empty()) {
      if (!new_path && position > 0) {
        // A prefix of a cached graph: every node matched, but no graph ended here.
        MissReason end;
        end.kind = MissReason::Kind::kGraphEnds;
        end.old_value = trie_[at].children.front().first.type;
        if (!kc.nodes.empty()) {
          end.node = kc.nodes.back().node;
          end.node_type = kc.nodes.back().key.type;
          end.node_call = int64_t(kc.nodes.size()) - 1;
        }
        r.reasons.push_back(end);
      }
      r.entry = NewEntry(kc, position);
      trie_[at].entries.push_back(r.entry);
    } else {
      CheckSizes(kc, position, &trie_[at].entries, &r);
    }
    for (const MissReason& reason : r.reasons) AddLog(reason.log, &r);
    if (!r.hit) {
      ++sim_.entries[size_t(r.entry)].compiles;
      if (!r.reasons.empty() && r.reasons[0].kind == MissReason::Kind::kSize) ShapeLog(&r);
    }
    sim_.entries[size_t(r.entry)].calls.push_back(position);
    sim_.calls.push_back(std::move(r));
  }

  CacheSimulation Finish() { return std::move(sim_); }

 private:
  struct TrieNode {
    std::vector<std::pair<NodeKey, size_t>> children;
    std::vector<int64_t> entries;  // graphs that end here; several only under kStatic
  };

  // Why no child of `parent` fits this call's node at NodeCall p: the
  // differences to the closest cached node there.
  std::vector<MissReason> Explain(const TrieNode& parent, const KeyedCall& kc, int64_t p) const {
    Explainer explainer(kc, p);
    if (parent.children.empty()) return {explainer.Longer()};
    std::vector<MissReason> best;
    size_t best_score = SIZE_MAX;
    for (const auto& [key, child] : parent.children) {
      std::vector<MissReason> diff = explainer.Diff(key);
      size_t score = diff.size() == 1 && diff[0].kind == MissReason::Kind::kNodeType ? 1000 : diff.size();
      if (score < best_score) {
        best_score = score;
        best = std::move(diff);
      }
    }
    return best;
  }

  int64_t NewEntry(const KeyedCall& kc, int64_t position) {
    CacheEntry e;
    e.id = int64_t(sim_.entries.size());
    for (size_t j = 0; j < kc.sizes.size(); ++j) {
      EntrySize s;
      s.input = kc.sizes[j];
      s.value = kc.size_values[j];
      s.seen = {s.value};
      if (sim_.mode == DynamicMode::kAll) {
        s.dynamic = true;
        s.dynamic_since = position;
      }
      e.sizes.push_back(std::move(s));
    }
    sim_.entries.push_back(std::move(e));
    return sim_.entries.back().id;
  }

  static void NoteSeen(EntrySize* s, int64_t value) {
    if (std::find(s->seen.begin(), s->seen.end(), value) == s->seen.end()) s->seen.push_back(value);
  }

  MissReason SizeReason(const EntrySize& s, int64_t now, const KeyedCall& kc) const {
    MissReason r;
    r.kind = MissReason::Kind::kSize;
    const SizeInput& in = kc.sizes[size_t(s.input.index)];
    r.node = in.node;
    r.node_type = in.node_type;
    r.node_call = in.node_call;
    r.tensor = in.where.tensor;
    r.role = in.where.role;
    r.leaf = in.leaf;
    r.op = in.where.op;
    r.op_name = in.op_name;
    if (in.where.op >= 0) r.arg = in.where.what;
    r.dim = in.where.dim;
    r.size_index = in.index;
    r.size_index_in_node = in.index_in_node;
    r.old_value = std::to_string(s.value);
    r.new_value = std::to_string(now);
    return r;
  }

  // `candidates`: the entries of the call's graph; under kStatic a new one
  // is added to them.
  void CheckSizes(const KeyedCall& kc, int64_t position, std::vector<int64_t>* candidates,
                  CacheCallResult* r) {
    if (sim_.mode == DynamicMode::kStatic) {
      // Each tuple of sizes is its own entry; a miss is explained against
      // the entry that differs in the fewest sizes.
      int64_t closest = -1;
      size_t fewest = SIZE_MAX;
      for (int64_t id : *candidates) {
        size_t differ = 0;
        const CacheEntry& e = sim_.entries[size_t(id)];
        for (size_t j = 0; j < e.sizes.size(); ++j) differ += e.sizes[j].value != kc.size_values[j];
        if (differ < fewest) {
          fewest = differ;
          closest = id;
        }
      }
      if (fewest == 0) {
        r->hit = true;
        r->entry = closest;
        return;
      }
      const CacheEntry& e = sim_.entries[size_t(closest)];
      for (size_t j = 0; j < e.sizes.size(); ++j)
        if (e.sizes[j].value != kc.size_values[j])
          r->reasons.push_back(SizeReason(e.sizes[j], kc.size_values[j], kc));
      r->entry = NewEntry(kc, position);
      candidates->push_back(r->entry);
      return;
    }
    CacheEntry& e = sim_.entries[size_t(candidates->front())];
    r->entry = e.id;
    for (size_t j = 0; j < e.sizes.size() && j < kc.size_values.size(); ++j) {
      EntrySize& s = e.sizes[j];
      const int64_t now = kc.size_values[j];
      NoteSeen(&s, now);
      if (s.dynamic || s.value == now) continue;
      MissReason reason = SizeReason(s, now, kc);
      reason.now_dynamic = true;
      reason.log = "Cache miss due to changed shapes: marking size idx " +
                   std::to_string(reason.size_index_in_node) + " of " + reason.node_type + " (NodeCall " +
                   std::to_string(reason.node_call) + ") as dynamic";
      r->reasons.push_back(reason);
      s.dynamic = true;
      s.dynamic_since = position;
    }
    r->hit = r->reasons.empty();
  }

  static void AddLog(const std::string& line, CacheCallResult* r) {
    if (!line.empty() && std::find(r->log.begin(), r->log.end(), line) == r->log.end())
      r->log.push_back(line);
  }

  // The summary line newer PyTorch prints for a shape miss, before the
  // per-size lines older versions print.
  static void ShapeLog(CacheCallResult* r) {
    std::string line = "Cache miss due to " + std::to_string(r->reasons.size()) +
                       " changed tensor shapes (total of " + std::to_string(r->sizes) + "): ";
    for (size_t i = 0; i < r->reasons.size(); ++i)
      line += (i ? ", " : "") + std::string("sizes[") + std::to_string(r->reasons[i].size_index) + "]";
    r->log.insert(r->log.begin(), line);
  }

  CacheSimulation sim_;
  std::vector<TrieNode> trie_{1};  // [0] is the root
};

}  // namespace

const char* ReasonKindName(MissReason::Kind kind) {
  using K = MissReason::Kind;
  switch (kind) {
    case K::kCacheEmpty:
      return "cache_empty";
    case K::kNodeType:
      return "node_type";
    case K::kGraphEnds:
      return "graph_ends";
    case K::kHooks:
      return "hooks";
    case K::kEdges:
      return "edges";
    case K::kTensorCount:
      return "tensor_count";
    case K::kTensor:
      return "tensor";
    case K::kScalar:
      return "scalar";
    case K::kSizeCount:
      return "size_count";
    case K::kSize:
      return "size";
    case K::kKey:
      return "key";
    case K::kUnsupported:
      return "unsupported";
  }
  return "?";
}

const char* DynamicModeName(DynamicMode mode) {
  switch (mode) {
    case DynamicMode::kAuto:
      return "auto";
    case DynamicMode::kStatic:
      return "static";
    case DynamicMode::kAll:
      return "all";
  }
  return "?";
}

bool ParseDynamicMode(const std::string& text, DynamicMode* mode) {
  for (DynamicMode m : {DynamicMode::kAuto, DynamicMode::kStatic, DynamicMode::kAll}) {
    if (text == DynamicModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

int64_t CacheEntry::dynamic_sizes() const {
  int64_t n = 0;
  for (const EntrySize& s : sizes) n += s.dynamic;
  return n;
}

int64_t CacheSimulation::hits() const {
  int64_t n = 0;
  for (const CacheCallResult& c : calls) n += c.hit;
  return n;
}

int64_t CacheSimulation::compiles() const { return int64_t(calls.size()) - hits(); }

int64_t CacheSimulation::recompiles() const { return std::max<int64_t>(compiles() - 1, 0); }

double CacheSimulation::hit_rate() const { return calls.empty() ? 0 : double(hits()) / double(calls.size()); }

CacheSimulation SimulateCache(const std::vector<CacheCall>& calls, DynamicMode mode) {
  Cache cache(mode);
  for (const CacheCall& c : calls) cache.Run(c);
  return cache.Finish();
}

std::string ReasonHint(const MissReason& r) {
  using K = MissReason::Kind;
  switch (r.kind) {
    case K::kCacheEmpty:
      return "";
    case K::kNodeType:
    case K::kGraphEnds:
    case K::kEdges:
      return "the backward graph itself changed (another forward path, a new layer, data-dependent control "
             "flow); each distinct graph compiles once";
    case K::kHooks:
      return "register hooks once, before the first backward, and keep them: adding or removing one between "
             "steps changes the key";
    case K::kTensorCount:
      return "the node saved another number of tensors: its forward ran with other arguments";
    case K::kTensor:
      if (r.field == "defined" && r.role == "old_grad" && r.new_value == "defined")
        return "once: .grad was undefined (the first step) and is now zeroed in place; with "
               "zero_grad(set_to_none=True), PyTorch's default, it stays undefined and this recompile goes "
               "away";
      if (r.field == "defined" && r.role == "old_grad")
        return ".grad was zeroed in place and is now set to None: reset grads one way on every step";
      if (r.field == "defined")
        return "a gradient is undefined on some calls and not on others (an output that does not always "
               "contribute to the loss)";
      if (r.field == "dtype")
        return "keep dtypes fixed across steps (autocast on some steps only changes them)";
      if (r.field == "device") return "keep the tensors on one device across steps";
      if (r.field == "requires_grad")
        return "freezing or unfreezing parameters changes the key: do it once, not between steps";
      return "which inputs are one tensor changed (weight tying, or a buffer reused under another name)";
    case K::kScalar:
      return "scalars are specialised into the key: keep them constant across steps, or pass them as tensors";
    case K::kSizeCount:
      return "a tensor's rank or a size list's length changed: each rank compiles once";
    case K::kSize:
      if (r.now_dynamic)
        return "once per size: it is dynamic from now on; pad to fixed sizes to avoid the recompile";
      return "--dynamic static compiles every new size; the default (auto) marks a changing size dynamic";
    case K::kKey:
      if (r.node_call == 0)
        return "the call starts from other roots, gradients or requested inputs than the cached graphs";
      return "the node's own state changed (its saved scalars, the metadata of what it saved or lifts, a "
             "Python Function's key); compare the two calls with `cautograd diff`";
    case K::kUnsupported:
      return "compiled autograd raises on this call: run this step without it "
             "(torch._dynamo.compiled_autograd._disable()), or replace the node or hook it names";
  }
  return "";
}

}  // namespace cautograd
