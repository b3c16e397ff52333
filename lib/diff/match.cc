#include "lib/diff/match.h"

#include <deque>
#include <string>
#include <unordered_map>

#include "lib/diff/align.h"
#include "lib/trace/guards.h"

namespace cautograd {

namespace {

// Strings to small ints, so alignment compares ints.
class Interner {
 public:
  int Id(const std::string& key) { return ids_.emplace(key, int(ids_.size())).first->second; }

 private:
  std::unordered_map<std::string, int> ids_;
};

// What tells two nodes of one type apart without ids: the parameter a leaf
// stands for (its name and shape), the parameters its outputs feed (a
// layer's AddmmBackward0 feeds its bias), the shapes and dtypes of its
// inputs, and which of its outputs lead nowhere (a layer whose input needs no
// gradient, the first, has a null edge where a layer stacked on it has none).
std::string StrictKey(const Call& call, const Node& n) {
  std::string key = n.type;
  key += '\x1f';
  if (n.leaf) {
    key += n.leaf->name + ':';
    for (int64_t d : n.leaf->shape) key += std::to_string(d) + ',';
  }
  for (const InputMeta& in : n.inputs) {
    key += '\x1f';
    key += in.dtype;
    for (int64_t d : in.shape) key += ',' + std::to_string(d);
  }
  key += '\x1f';
  for (const Edge& e : n.next) {
    key += e.node < 0 ? '0' : '1';
    if (e.node < 0) continue;
    const Node& next = call.nodes[size_t(e.node)];
    if (next.leaf && !next.leaf->name.empty()) key += next.leaf->name + ';';
  }
  return key;
}

class NodeMatcher {
 public:
  NodeMatcher(const Call& a, const Call& b, CallMatch* m) : a_(a), b_(b), m_(m) {}

  void Run() {
    ea_ = ExecutedNodes(a_);
    eb_ = ExecutedNodes(b_);
    std::vector<int> strict_a, strict_b;
    for (const Node* n : ea_) strict_a.push_back(interner_.Id(StrictKey(a_, *n)));
    for (const Node* n : eb_) strict_b.push_back(interner_.Id(StrictKey(b_, *n)));
    bool exact = true;
    const Alignment anchors = Align(strict_a, strict_b, kDefaultMaxEdits, &exact);
    m_->exact = exact;
    int64_t i = 0, j = 0;
    for (const auto& [ai, bj] : anchors) {
      Gap(i, ai, j, bj);
      Pair(ea_[size_t(ai)]->id, eb_[size_t(bj)]->id, false);
      i = ai + 1;
      j = bj + 1;
    }
    Gap(i, int64_t(ea_.size()), j, int64_t(eb_.size()));
    Propagate();
  }

 private:
  void Pair(int64_t a, int64_t b, bool retyped) {
    m_->node_a_to_b[size_t(a)] = b;
    m_->node_b_to_a[size_t(b)] = a;
    m_->retyped_a[size_t(a)] = retyped;
    paired_.push_back(a);
  }

  // Executed nodes a[i0, i1) and b[j0, j1) lie between two anchors: pair
  // those of one type in order, then what is left by place.
  void Gap(int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (i0 == i1 || j0 == j1) return;
    std::vector<int> type_a, type_b;
    for (int64_t i = i0; i < i1; ++i) type_a.push_back(interner_.Id(ea_[size_t(i)]->type));
    for (int64_t j = j0; j < j1; ++j) type_b.push_back(interner_.Id(eb_[size_t(j)]->type));
    int64_t i = i0, j = j0;
    for (const auto& [ai, bj] : Align(type_a, type_b)) {
      ByPlace(i, ai + i0, j, bj + j0);
      Pair(ea_[size_t(ai + i0)]->id, eb_[size_t(bj + j0)]->id, false);
      i = ai + i0 + 1;
      j = bj + j0 + 1;
    }
    ByPlace(i, i1, j, j1);
  }

  // As many nodes on each side, of other types: one replaced the other.
  // Otherwise they are added and removed.
  void ByPlace(int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (i1 - i0 != j1 - j0) return;
    for (int64_t k = 0; k < i1 - i0; ++k) Pair(ea_[size_t(i0 + k)]->id, eb_[size_t(j0 + k)]->id, true);
  }

  // Nodes that did not run, reached along the same output slot of paired
  // nodes (or as the same root), pair when their types agree.
  void Propagate() {
    auto try_pair = [&](int64_t x, int64_t y) {
      if (x < 0 || y < 0 || m_->node_a_to_b[size_t(x)] >= 0 || m_->node_b_to_a[size_t(y)] >= 0) return;
      if (a_.nodes[size_t(x)].type != b_.nodes[size_t(y)].type) return;
      Pair(x, y, false);
    };
    for (size_t r = 0; r < a_.roots.size() && r < b_.roots.size(); ++r) try_pair(a_.roots[r], b_.roots[r]);
    for (size_t k = 0; k < paired_.size(); ++k) {  // paired_ grows as it goes
      const Node& x = a_.nodes[size_t(paired_[k])];
      const Node& y = b_.nodes[size_t(m_->node_a_to_b[size_t(paired_[k])])];
      for (size_t e = 0; e < x.next.size() && e < y.next.size(); ++e)
        try_pair(x.next[e].node, y.next[e].node);
    }
  }

  const Call& a_;
  const Call& b_;
  CallMatch* m_;
  std::vector<const Node*> ea_, eb_;
  std::vector<int64_t> paired_;  // a's node ids, in the order they paired
  Interner interner_;
};

// Ops of each node, per phase; the engine's ops under node -1.
std::unordered_map<int64_t, std::vector<std::vector<int64_t>>> OpsByNode(const Call& call) {
  std::unordered_map<int64_t, std::vector<std::vector<int64_t>>> by_node;
  for (const Op& op : call.ops) {
    std::vector<std::vector<int64_t>>& phases = by_node[op.node];
    phases.resize(4);
    phases[size_t(op.phase)].push_back(op.index);
  }
  return by_node;
}

void MatchOps(const Call& a, const Call& b, CallMatch* m) {
  const auto ops_a = OpsByNode(a), ops_b = OpsByNode(b);
  Interner labels;
  auto align = [&](const std::vector<int64_t>& xs, const std::vector<int64_t>& ys) {
    std::vector<int> ka, kb;
    for (int64_t x : xs) ka.push_back(labels.Id(OpLabel(a.ops[size_t(x)])));
    for (int64_t y : ys) kb.push_back(labels.Id(OpLabel(b.ops[size_t(y)])));
    for (const auto& [i, j] : Align(ka, kb)) {
      m->op_a_to_b[size_t(xs[size_t(i)])] = ys[size_t(j)];
      m->op_b_to_a[size_t(ys[size_t(j)])] = xs[size_t(i)];
    }
  };
  for (const auto& [node, phases] : ops_a) {
    int64_t other = -1;
    if (node >= 0) {
      if (!m->Same(node)) continue;
      other = m->node_a_to_b[size_t(node)];
    }
    auto it = ops_b.find(other);
    if (it == ops_b.end()) continue;
    for (size_t p = 0; p < phases.size(); ++p) align(phases[p], it->second[p]);
  }
}

}  // namespace

CallMatch MatchCalls(const Call& a, const Call& b) {
  CallMatch m;
  m.node_a_to_b.assign(a.nodes.size(), -1);
  m.node_b_to_a.assign(b.nodes.size(), -1);
  m.retyped_a.assign(a.nodes.size(), false);
  m.op_a_to_b.assign(a.ops.size(), -1);
  m.op_b_to_a.assign(b.ops.size(), -1);
  NodeMatcher(a, b, &m).Run();
  MatchOps(a, b, &m);
  return m;
}

}  // namespace cautograd
