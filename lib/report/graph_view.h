// What a picture of one call's backward graph shows: its nodes, with the
// repeated structure found in it (the identical layers of a transformer,
// the blocks of a ResNet) collapsed into one box per run of repeats.
// Shared by `report` (which lays views out with Graphviz) and `dot`.
//
// Data only, no libtorch, and safe on a hostile trace: edges to nodes the
// call does not have are dropped, never followed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

// A run of structurally identical pieces of the graph: `instances` copies,
// one after another in execution order, of `period` non-leaf nodes whose
// types, hooks and edges (as offsets within the run) are the same. Each
// instance also holds the leaves (AccumulateGrad) only it feeds.
struct RepeatGroup {
  int64_t id = 0;
  int64_t period = 0;
  std::vector<std::vector<int64_t>> instances;  // positions in Call::nodes
  std::string first_type, last_type;            // of the first instance, in execution order

  int64_t count() const { return int64_t(instances.size()); }
  int64_t nodes() const;  // in all instances, leaves included
  std::string Label() const;  // "12 × NativeLayerNormBackward0 … AddBackward0"
};

struct RepeatOptions {
  int64_t min_nodes = 8;      // a run must cover at least this many non-leaf nodes
  int64_t max_period = 1000;  // bounds the search: O(nodes × max_period)
};

// The runs of repeats, largest first, none overlapping.
std::vector<RepeatGroup> FindRepeats(const Call& call, const RepeatOptions& options = {});

// One box to draw: a node of the call, or a collapsed group.
struct ViewNode {
  int64_t node = -1;   // position in Call::nodes, or -1 for a group
  int64_t group = -1;  // RepeatGroup::id, or -1 for a node
  std::string key;     // "n<id>" or "g<group>": stable names for layouts and scripts
  std::string label;   // one line
};

struct ViewEdge {
  int64_t from = 0, to = 0;  // positions in GraphView::nodes
  int64_t count = 1;         // edges it stands for
};

struct GraphView {
  std::vector<ViewNode> nodes;
  std::vector<ViewEdge> edges;
};

// The label a node gets in pictures: a leaf's parameter name where there
// is one, else its type without "torch::autograd::".
std::string NodeLabel(const Node& node);

// The graph with the groups whose `collapsed[i]` is set drawn as one box
// each (collapsed may be shorter than groups: the rest are expanded).
// Edges inside a collapsed group vanish; parallel edges merge with a count.
GraphView BuildView(const Call& call, const std::vector<RepeatGroup>& groups, const std::vector<bool>& collapsed);

}  // namespace cautograd
