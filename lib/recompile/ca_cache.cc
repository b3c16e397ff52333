#include "lib/recompile/ca_cache.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

namespace cautograd {

namespace {

using Key = std::tuple<std::string, int64_t, uint64_t>;  // node type, key size, key hash

struct TrieNode {
  std::map<Key, size_t> next;
  std::vector<Key> order;  // keys as they were added
  int64_t entry = -1;      // the cache entry a graph ending here is
  bool compiled = false;
  struct Expected {
    int64_t value = 0;
    bool dynamic = false;
  };
  std::vector<Expected> expected;
  std::map<std::vector<int64_t>, int64_t> static_entries;  // --dynamic static: sizes -> entry
  std::vector<int64_t> last_values;
};

// One size input of a call, flattened in compiled autograd's order.
struct FlatSize {
  const CaNode* node = nullptr;
  int64_t position = 0;  // the node's NodeCall
  const CaSize* size = nullptr;
};

std::string LeafName(const Call& call, int64_t node) {
  if (node < 0 || node >= int64_t(call.nodes.size())) return "";
  const auto& leaf = call.nodes[size_t(node)].leaf;
  return leaf ? leaf->name : "";
}

class RealCache {
 public:
  RealCache(const std::vector<CacheCall>& calls, DynamicMode mode) : calls_(calls), mode_(mode) {
    sim_.mode = mode;
    sim_.keys = "compiled_autograd";
    detail_ = SimulateCache(calls, mode);
  }

  CacheSimulation Run() {
    trie_.emplace_back();
    for (size_t c = 0; c < calls_.size(); ++c) RunCall(c);
    return std::move(sim_);
  }

 private:
  // The call's trace node id -> its NodeCall position.
  std::unordered_map<int64_t, int64_t> Positions(const CompiledAutogradKey& key) {
    std::unordered_map<int64_t, int64_t> out;
    for (size_t i = 0; i < key.nodes.size(); ++i)
      if (key.nodes[i].node >= 0) out.emplace(key.nodes[i].node, int64_t(i));
    return out;
  }

  std::string NodeText(const Call& call, const CompiledAutogradKey& key, int64_t position) {
    const CaNode& n = key.nodes[size_t(position)];
    return n.type + " (NodeCall " + std::to_string(position) +
           (LeafName(call, n.node).empty() ? "" : ", " + LeafName(call, n.node)) + ")";
  }

  // "dim 0 of the gradient SumBackward0 (NodeCall 1) passes to
  // ReluBackward0 (NodeCall 2)", "size 1 kept by MeanBackward0 (NodeCall 1)".
  std::string Where(const Call& call, const CompiledAutogradKey& key, const FlatSize& f,
                    const std::unordered_map<int64_t, int64_t>& positions) {
    const std::string from = NodeText(call, key, f.position);
    if (f.size->origin == CaSize::Origin::kState)
      return "size " + std::to_string(f.size->dim) + " kept by " + from;
    int64_t target = -1;
    int64_t input = -1;
    if (f.node->node >= 0) {
      const Node& n = call.nodes[size_t(f.node->node)];
      if (f.size->edge < int64_t(n.next.size())) {
        target = n.next[size_t(f.size->edge)].node;
        input = n.next[size_t(f.size->edge)].input;
      }
    } else if (f.size->edge < int64_t(call.roots.size())) {
      target = call.roots[size_t(f.size->edge)];  // a GraphRoot's edges lead to the call's roots
    }
    auto it = positions.find(target);
    std::string to = it == positions.end() ? "its next edge " + std::to_string(f.size->edge)
                                           : NodeText(call, key, it->second);
    if (input > 0) to += " as its input " + std::to_string(input);
    return "dim " + std::to_string(f.size->dim) + " of the gradient " + from + " passes to " + to;
  }

  void RunCall(size_t c) {
    const Call& call = *calls_[c].call;
    const CompiledAutogradKey& key = call.compiled_autograd;
    CacheCallResult r;
    r.source = calls_[c].source;
    r.call = call.index;
    r.nodes = int64_t(key.nodes.size());
    r.sizes = key.num_sizes();
    if (!key.error.empty()) {
      MissReason why;
      why.kind = MissReason::Kind::kUnsupported;
      why.node_call = key.error_at;
      why.old_value = key.error;
      r.reasons.push_back(why);
      sim_.calls.push_back(std::move(r));
      return;
    }
    const auto positions = Positions(key);
    size_t at = 0;
    bool logged = false;
    for (size_t i = 0; i < key.nodes.size(); ++i) {
      const CaNode& n = key.nodes[i];
      Key k{n.type, n.key_size, n.key_hash};
      auto it = trie_[at].next.find(k);
      if (it != trie_[at].next.end()) {
        at = it->second;
        continue;
      }
      if (!logged) {
        logged = true;
        KeyMiss(c, call, key, int64_t(i), trie_[at], &r);
      }
      size_t child = trie_.size();
      trie_.emplace_back();
      trie_[at].next.emplace(k, child);
      trie_[at].order.push_back(k);
      at = child;
    }
    CheckSizes(call, key, positions, at, logged, &r);
    sim_.calls.push_back(std::move(r));
  }

  void KeyMiss(size_t c, const Call& call, const CompiledAutogradKey& key, int64_t position, const TrieNode& t,
               CacheCallResult* r) {
    const CaNode& n = key.nodes[size_t(position)];
    MissReason why;
    why.kind = trie_.size() == 1 ? MissReason::Kind::kCacheEmpty : MissReason::Kind::kKey;
    why.node = n.node;
    why.node_type = n.type;
    why.node_call = position;
    why.leaf = LeafName(call, n.node);
    why.key_size = n.key_size;
    std::string previous;
    for (const Key& cached : t.order) {
      if (std::get<0>(cached) != n.type) continue;
      why.previous_key_sizes.push_back(std::get<1>(cached));
      previous += (previous.empty() ? "" : ",") + std::to_string(std::get<1>(cached));
    }
    why.log = "Cache miss due to new autograd node: " + n.type + " (NodeCall " + std::to_string(position) +
              ") with key size " + std::to_string(n.key_size) + ", previous key sizes=[" + previous + "]";
    r->log.push_back(why.log);
    r->reasons.push_back(why);
    if (why.kind != MissReason::Kind::kKey || n.node < 0) return;
    // What the recorded calls say changed at this node, in compiled
    // autograd's numbering.
    for (MissReason d : detail_.calls[c].reasons) {
      using K = MissReason::Kind;
      if (d.node != n.node || d.kind == K::kCacheEmpty || d.kind == K::kSize) continue;
      d.node_call = position;
      d.log.clear();
      d.explains = true;
      r->reasons.push_back(std::move(d));
    }
  }

  // sizes[index] changed from `from` to `to`.
  MissReason SizeReason(const Call& call, const CompiledAutogradKey& key, const FlatSize& f,
                        const std::unordered_map<int64_t, int64_t>& positions, int64_t index, int64_t from,
                        int64_t to) {
    MissReason why;
    why.kind = MissReason::Kind::kSize;
    why.node = f.node->node;
    why.node_type = f.node->type;
    why.node_call = f.position;
    why.leaf = LeafName(call, why.node);
    why.size_index = index;
    why.size_index_in_node = f.size->dim;
    why.old_value = std::to_string(from);
    why.new_value = std::to_string(to);
    why.where = Where(call, key, f, positions);
    return why;
  }

  void CheckSizes(const Call& call, const CompiledAutogradKey& key,
                  const std::unordered_map<int64_t, int64_t>& positions, size_t at, bool logged,
                  CacheCallResult* r) {
    std::vector<FlatSize> sizes;
    for (size_t i = 0; i < key.nodes.size(); ++i)
      for (const CaSize& s : key.nodes[i].sizes) sizes.push_back({&key.nodes[i], int64_t(i), &s});
    TrieNode& leaf = trie_[at];
    if (mode_ == DynamicMode::kStatic) return StaticSizes(call, key, positions, sizes, logged, &leaf, r);
    bool hit = leaf.compiled;
    if (leaf.expected.empty()) {
      for (const FlatSize& f : sizes)
        leaf.expected.push_back({f.size->value, mode_ == DynamicMode::kAll && !f.size->forced_static});
    }
    if (leaf.entry < 0) NewEntry(call, key, sizes, positions, &leaf);
    CacheEntry& entry = sim_.entries[size_t(leaf.entry)];
    if (leaf.expected.size() != sizes.size()) {
      // Cannot happen for equal keys (a size count is in the key bytes);
      // a trace edited by hand could. Counted as a miss that compiles anew.
      hit = false;
      leaf.expected.clear();
      for (const FlatSize& f : sizes) leaf.expected.push_back({f.size->value, false});
    }
    std::vector<int64_t> newly;
    int64_t dynamic_count = 0;
    for (size_t i = 0; i < sizes.size() && i < leaf.expected.size(); ++i) {
      TrieNode::Expected& e = leaf.expected[i];
      const int64_t value = sizes[i].size->value;
      const bool was_dynamic = e.dynamic;
      const bool changed = e.value != value;
      if (changed && !was_dynamic) {
        hit = false;
        newly.push_back(dynamic_count);
        MissReason why = SizeReason(call, key, sizes[i], positions, dynamic_count, e.value, value);
        why.now_dynamic = true;
        if (!logged) r->reasons.push_back(why);
        if (i < entry.sizes.size() && why.now_dynamic && !entry.sizes[i].dynamic) {
          entry.sizes[i].dynamic = true;
          entry.sizes[i].dynamic_since = int64_t(sim_.calls.size());
        }
      }
      if (changed) e = {value, mode_ != DynamicMode::kStatic};
      if (changed || was_dynamic) ++dynamic_count;
      if (i < entry.sizes.size()) {
        auto& seen = entry.sizes[i].seen;
        if (std::find(seen.begin(), seen.end(), value) == seen.end()) seen.push_back(value);
      }
    }
    if (!logged && !newly.empty()) {
      std::string line = "Cache miss due to " + std::to_string(newly.size()) + " changed tensor shapes (total of " +
                         std::to_string(dynamic_count) + "): ";
      for (size_t i = 0; i < newly.size(); ++i) line += (i ? ", sizes[" : "sizes[") + std::to_string(newly[i]) + "]";
      r->log.push_back(line);
      for (MissReason& why : r->reasons) why.log = line;
    }
    r->hit = hit;
    r->entry = leaf.entry;
    entry.calls.push_back(int64_t(sim_.calls.size()));
    if (!hit) {
      leaf.compiled = true;
      ++entry.compiles;
    }
  }

  // --dynamic static: no size is ever dynamic, so each distinct tuple of
  // sizes is a program of its own; a tuple seen before hits its program.
  // (Compiled autograd has no such mode: this is "what if every size were
  // specialised".) Reasons compare with the tuple this graph last ran with.
  void StaticSizes(const Call& call, const CompiledAutogradKey& key,
                   const std::unordered_map<int64_t, int64_t>& positions, const std::vector<FlatSize>& sizes,
                   bool logged, TrieNode* leaf, CacheCallResult* r) {
    std::vector<int64_t> values;
    for (const FlatSize& f : sizes) values.push_back(f.size->value);
    auto it = leaf->static_entries.find(values);
    const bool hit = it != leaf->static_entries.end();
    if (!hit) {
      if (!logged && leaf->last_values.size() == values.size()) {
        for (size_t i = 0; i < values.size(); ++i) {
          if (values[i] == leaf->last_values[i]) continue;
          r->reasons.push_back(
              SizeReason(call, key, sizes[i], positions, int64_t(i), leaf->last_values[i], values[i]));
        }
      }
      TrieNode shadow;
      NewEntry(call, key, sizes, positions, &shadow);
      it = leaf->static_entries.emplace(values, shadow.entry).first;
    }
    leaf->last_values = values;
    CacheEntry& entry = sim_.entries[size_t(it->second)];
    for (size_t i = 0; i < entry.sizes.size() && i < values.size(); ++i)
      if (entry.sizes[i].seen.empty()) entry.sizes[i].seen.push_back(values[i]);
    r->hit = hit;
    r->entry = it->second;
    entry.calls.push_back(int64_t(sim_.calls.size()));
    if (!hit) ++entry.compiles;
  }

  void NewEntry(const Call& call, const CompiledAutogradKey& key, const std::vector<FlatSize>& sizes,
                const std::unordered_map<int64_t, int64_t>& positions, TrieNode* leaf) {
    CacheEntry entry;
    entry.id = int64_t(sim_.entries.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      EntrySize es;
      es.input.index = int64_t(i);
      es.input.node_call = sizes[i].position;
      es.input.node = sizes[i].node->node;
      es.input.node_type = sizes[i].node->type;
      es.input.index_in_node = sizes[i].size->dim;
      es.input.leaf = LeafName(call, sizes[i].node->node);
      es.input.where_text = Where(call, key, sizes[i], positions);
      es.value = sizes[i].size->value;
      es.dynamic = mode_ == DynamicMode::kAll && !sizes[i].size->forced_static;
      if (es.dynamic) es.dynamic_since = int64_t(sim_.calls.size());  // this call, the entry's first
      entry.sizes.push_back(std::move(es));
    }
    leaf->entry = entry.id;
    sim_.entries.push_back(std::move(entry));
  }

  const std::vector<CacheCall>& calls_;
  DynamicMode mode_;
  CacheSimulation sim_;
  CacheSimulation detail_;  // the simulation on recorded calls, for what changed at a node
  std::vector<TrieNode> trie_;
};

}  // namespace

bool HaveRealKeys(const std::vector<CacheCall>& calls) {
  if (calls.empty()) return false;
  for (const CacheCall& c : calls)
    if (!c.call->compiled_autograd.present()) return false;
  return true;
}

CacheSimulation SimulateRealCache(const std::vector<CacheCall>& calls, DynamicMode mode) {
  return RealCache(calls, mode).Run();
}

}  // namespace cautograd
