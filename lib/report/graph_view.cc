#include "lib/report/graph_view.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace cautograd {

namespace {

constexpr const char kAutogradPrefix[] = "torch::autograd::";

// Positions in Call::nodes by node id; the first of duplicated ids wins.
std::unordered_map<int64_t, int64_t> PositionsById(const Call& call) {
  std::unordered_map<int64_t, int64_t> pos;
  pos.reserve(call.nodes.size());
  for (size_t i = 0; i < call.nodes.size(); ++i) pos.emplace(call.nodes[i].id, int64_t(i));
  return pos;
}

struct Candidate {
  int64_t start = 0, period = 0, count = 0;
  int64_t covered() const { return period * count; }
};

}  // namespace

int64_t RepeatGroup::nodes() const {
  int64_t n = 0;
  for (const auto& instance : instances) n += int64_t(instance.size());
  return n;
}

std::string RepeatGroup::Label() const {
  std::string label = std::to_string(count()) + " \u00d7 " + first_type;
  if (period > 1) label += " \u2026 " + last_type;
  return label;
}

std::string NodeLabel(const Node& node) {
  if (node.leaf && !node.leaf->name.empty()) return node.leaf->name;
  const std::string& type = node.type;
  if (type.compare(0, sizeof(kAutogradPrefix) - 1, kAutogradPrefix) == 0)
    return type.substr(sizeof(kAutogradPrefix) - 1);
  return type;
}

std::vector<RepeatGroup> FindRepeats(const Call& call, const RepeatOptions& options) {
  const auto pos = PositionsById(call);
  auto target = [&](const Edge& e) -> int64_t {
    auto it = pos.find(e.node);
    return it == pos.end() ? -1 : it->second;
  };

  // The non-leaf nodes in execution order (those that did not run last, by
  // id): the order in which repeated layers appear one after another.
  std::vector<int64_t> order;
  for (size_t i = 0; i < call.nodes.size(); ++i)
    if (!call.nodes[i].leaf) order.push_back(int64_t(i));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const Node& x = call.nodes[size_t(a)];
    const Node& y = call.nodes[size_t(b)];
    const int64_t ex = x.executed ? x.exec_order : INT64_MAX, ey = y.executed ? y.exec_order : INT64_MAX;
    return std::tie(ex, x.id) < std::tie(ey, y.id);
  });
  const int64_t n = int64_t(order.size());
  std::vector<int64_t> rank(call.nodes.size(), -1);
  for (int64_t r = 0; r < n; ++r) rank[size_t(order[size_t(r)])] = r;

  // A node's signature: its type, its hooks, and where each edge leads as
  // an offset in `order`, so that two instances of a layer sign alike. An
  // edge to a node many feed (the input every time step of an RNN reads)
  // counts by that node's type, once: its offset differs in every
  // instance, and so may the number of such edges.
  std::vector<int64_t> fed_by(call.nodes.size(), 0);
  for (const Node& node : call.nodes)
    for (const Edge& e : node.next)
      if (const int64_t t = target(e); t >= 0) ++fed_by[size_t(t)];
  std::vector<int64_t> sig(static_cast<size_t>(n));
  {
    std::unordered_map<std::string, int64_t> interned;
    for (int64_t r = 0; r < n; ++r) {
      const Node& node = call.nodes[size_t(order[size_t(r)])];
      std::string s = node.type;
      for (const Hook& h : node.hooks) s += std::string("\x1fh") + HookKindName(h.kind);
      std::set<std::string> shared;  // by type, once: a DenseNet layer's concat reads all before it
      for (const Edge& e : node.next) {
        const int64_t t = target(e);
        if (t < 0)
          s += "\x1f-";
        else if (rank[size_t(t)] < 0)
          s += "\x1fL";
        else if (fed_by[size_t(t)] > 2)
          shared.insert(call.nodes[size_t(t)].type);
        else
          s += "\x1f" + std::to_string(rank[size_t(t)] - r);
      }
      for (const std::string& type : shared) s += "\x1fS" + type;
      sig[size_t(r)] = interned.emplace(std::move(s), int64_t(interned.size())).first->second;
    }
  }

  // Every maximal periodic stretch, per period.
  std::vector<Candidate> candidates;
  const int64_t max_period = std::min(options.max_period, n / 2);
  // A hostile trace could make millions of short runs: past this many the
  // longer periods are not searched.
  constexpr size_t kMaxCandidates = 1 << 20;
  for (int64_t p = 1; p <= max_period && candidates.size() < kMaxCandidates; ++p) {
    for (int64_t i = 0; i + p < n;) {
      if (sig[size_t(i)] != sig[size_t(i + p)]) {
        ++i;
        continue;
      }
      int64_t j = i;
      while (j + p < n && sig[size_t(j)] == sig[size_t(j + p)]) ++j;
      const int64_t count = (j - i + p) / p;
      if (count >= 2 && count * p >= options.min_nodes) candidates.push_back({i, p, count});
      i = j + 1;
    }
  }
  // Runs of three or more first: two halves of a network that happen to
  // match would otherwise hide the layers repeated inside each (DenseNet's
  // blocks). Then the most nodes covered, then the shortest period (one
  // layer, not pairs of layers).
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.count < 3, -a.covered(), a.period, a.start) <
           std::make_tuple(b.count < 3, -b.covered(), b.period, b.start);
  });

  std::vector<RepeatGroup> groups;
  std::map<int64_t, int64_t> taken;  // start -> end of the runs chosen, which never overlap
  // (group, instance) each non-leaf position belongs to.
  std::vector<std::pair<int64_t, int64_t>> owner(call.nodes.size(), {-1, -1});
  for (const Candidate& c : candidates) {
    const int64_t end = c.start + c.covered();
    auto after = taken.lower_bound(c.start);
    if (after != taken.end() && after->first < end) continue;
    if (after != taken.begin() && std::prev(after)->second > c.start) continue;
    taken.emplace(c.start, end);
    RepeatGroup g;
    g.id = int64_t(groups.size());
    g.period = c.period;
    g.instances.resize(size_t(c.count));
    for (int64_t k = 0; k < c.count; ++k)
      for (int64_t r = c.start + k * c.period; r < c.start + (k + 1) * c.period; ++r) {
        const int64_t p = order[size_t(r)];
        g.instances[size_t(k)].push_back(p);
        owner[size_t(p)] = {g.id, k};
      }
    g.first_type = NodeLabel(call.nodes[size_t(order[size_t(c.start)])]);
    g.last_type = NodeLabel(call.nodes[size_t(order[size_t(c.start + c.period - 1)])]);
    groups.push_back(std::move(g));
  }

  // A leaf goes with the instance that alone feeds it.
  std::vector<std::pair<int64_t, int64_t>> leaf_owner(call.nodes.size(), {-2, -2});  // -2: no feeder yet
  for (size_t i = 0; i < call.nodes.size(); ++i) {
    for (const Edge& e : call.nodes[i].next) {
      const int64_t t = target(e);
      if (t < 0 || !call.nodes[size_t(t)].leaf) continue;
      auto& lo = leaf_owner[size_t(t)];
      const auto from = call.nodes[i].leaf ? std::make_pair(int64_t(-1), int64_t(-1)) : owner[i];
      if (lo.first == -2)
        lo = from;
      else if (lo != from)
        lo = {-1, -1};
    }
  }
  for (size_t i = 0; i < call.nodes.size(); ++i) {
    const auto& lo = leaf_owner[i];
    if (lo.first >= 0) groups[size_t(lo.first)].instances[size_t(lo.second)].push_back(int64_t(i));
  }
  return groups;
}

GraphView BuildView(const Call& call, const std::vector<RepeatGroup>& groups, const std::vector<bool>& collapsed) {
  const auto pos = PositionsById(call);
  GraphView view;
  std::vector<int64_t> group_of(call.nodes.size(), -1);
  for (const RepeatGroup& g : groups) {
    if (size_t(g.id) >= collapsed.size() || !collapsed[size_t(g.id)]) continue;
    for (const auto& instance : g.instances)
      for (int64_t p : instance) group_of[size_t(p)] = g.id;
  }
  std::vector<int64_t> view_of(call.nodes.size(), -1);
  std::map<int64_t, int64_t> group_view;
  for (size_t i = 0; i < call.nodes.size(); ++i) {
    const int64_t g = group_of[i];
    if (g >= 0) {
      auto [it, added] = group_view.emplace(g, int64_t(view.nodes.size()));
      if (added) {
        const RepeatGroup& group = groups[size_t(g)];
        view.nodes.push_back({-1, g, "g" + std::to_string(g), group.Label()});
      }
      view_of[i] = it->second;
      continue;
    }
    view_of[i] = int64_t(view.nodes.size());
    view.nodes.push_back({int64_t(i), -1, "n" + std::to_string(call.nodes[i].id), NodeLabel(call.nodes[i])});
  }
  std::map<std::pair<int64_t, int64_t>, size_t> seen;
  for (size_t i = 0; i < call.nodes.size(); ++i) {
    for (const Edge& e : call.nodes[i].next) {
      auto it = pos.find(e.node);
      if (it == pos.end()) continue;
      const int64_t from = view_of[i], to = view_of[size_t(it->second)];
      if (from == to) continue;
      auto [s, added] = seen.emplace(std::make_pair(from, to), view.edges.size());
      if (added)
        view.edges.push_back({from, to, 1});
      else
        ++view.edges[s->second].count;
    }
  }
  return view;
}

}  // namespace cautograd
