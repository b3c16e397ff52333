// Graph layout by Graphviz's `dot` program, run as a child process on the
// DOT that LayoutDot writes: measured here it lays out 1,400 nodes in a
// quarter second and 5,000 in a few, faster than any JavaScript layout, and
// a crash or a hang in it costs one message, not the report. `dot` is an
// optional runtime dependency: without it the report draws no graphs and
// says why.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cautograd {

// Units are points (the report draws 1 point = 1 CSS pixel), origin top
// left, y down.
struct NodeBox {
  double x = 0, y = 0;  // centre
  double w = 0, h = 0;
};

struct EdgePath {
  int64_t from = 0, to = 0;    // positions in the view's nodes
  std::vector<double> points;  // x0 y0 x1 y1 ...: a cubic B-spline, 1 + 3k control points
};

struct Layout {
  double width = 0, height = 0;
  std::vector<NodeBox> nodes;  // in GraphView order
  std::vector<EdgePath> edges;
};

// Reads `dot -Tplain` output for a graph whose nodes are v0 .. v<nodes-1>.
bool ParsePlainLayout(const std::string& plain, size_t nodes, Layout* layout, std::string* err);

struct DotProgram {
  std::string path;        // as found on PATH, or as the user named it
  double timeout_s = 300;  // per graph
};

// Finds `name` ("dot", or a path) as a program that runs. False and *err
// says how to get it.
bool FindDot(const std::string& name, DotProgram* dot, std::string* err);

struct LayoutJob {
  std::string dot;  // input, from LayoutDot
  // Where not empty, the same graph with dot's effort bounded: used when
  // `dot` takes longer than `try_s`.
  std::string dot_fast;
  double try_s = 2;
  size_t nodes = 0;
  Layout layout;    // out
  std::string err;  // out: why there is no layout ("" on success)
};

// Lays out every job, `parallel` dot processes at a time (the fast
// variant first where `dot` alone would be too slow); `progress(done,
// total)` after each. Temporary files live in a private directory that is
// removed after.
void RunLayouts(const DotProgram& dot, std::vector<LayoutJob>* jobs, int parallel,
                const std::function<void(size_t, size_t)>& progress);

}  // namespace cautograd
