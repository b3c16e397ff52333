// Graphviz DOT for a GraphView: the input `report` gives `dot` to lay out
// (boxes of fixed size, no text, so that dot needs no fonts), and the
// labelled picture `cautograd dot` prints for people who draw their own.
#pragma once

#include <string>
#include <vector>

#include "lib/report/graph_view.h"

namespace cautograd {

// Box sizes in points, the units the report draws in: wide enough for the
// label in the report's 12 px monospace font.
double BoxWidth(const ViewNode& node);
double BoxHeight(const ViewNode& node);

// The layout input: nodes named v0, v1, ... in GraphView order. `fast`
// bounds dot's effort (straight edges, fewer passes) for graphs it would
// take minutes over.
std::string LayoutDot(const GraphView& view, bool fast);

// One call as a labelled digraph, or (with `cluster`) as a cluster named
// after the call, to sit with others in one digraph. Times colour nodes,
// hooks and retain_grad are marked, leaves are named.
std::string CallDot(const Call& call, const GraphView& view, const std::vector<RepeatGroup>& groups,
                    bool cluster);

// A DOT string literal: quoted, with quotes, backslashes and line breaks escaped.
std::string DotQuote(const std::string& text);

}  // namespace cautograd
