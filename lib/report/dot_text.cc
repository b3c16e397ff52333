#include "lib/report/dot_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "lib/trace/human.h"

namespace cautograd {

namespace {

constexpr double kCharWidth = 7.3;  // 12 px monospace, as report.css draws it
constexpr double kPad = 14;
constexpr size_t kMaxLabel = 48;  // longer labels are cut with "…" when drawn

std::string Inches(double points) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", points / 72.0);
  return buf;
}

// Characters a label takes when drawn: UTF-8 continuation bytes are no width.
size_t DrawnLength(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return std::min(n, kMaxLabel);
}

// Light yellow for the fastest node, red for the slowest.
std::string HeatColor(double ratio) {
  ratio = std::isfinite(ratio) ? std::clamp(ratio, 0.0, 1.0) : 0.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f %.3f 1.000", 0.15 * (1 - ratio), 0.15 + 0.7 * ratio);
  return buf;
}

}  // namespace

double BoxWidth(const ViewNode& node) { return std::max(48.0, kCharWidth * double(DrawnLength(node.label)) + kPad); }
double BoxHeight(const ViewNode& node) { return node.group >= 0 ? 34 : 24; }

std::string DotQuote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string LayoutDot(const GraphView& view, bool fast) {
  std::string out = "digraph G {\n graph [nodesep=0.2 ranksep=0.3";
  // dot's crossing minimisation and spline routing grow fast with long
  // edges: densenet121 (797 nodes, 1,331 edges, most of them skips) took
  // over 300 s with the defaults and 3.3 s with these.
  if (fast) out += " mclimit=0.05 nslimit=0.2 nslimit1=0.2 splines=line";
  out += "];\n node [shape=box fixedsize=true label=\"\"];\n";
  for (size_t i = 0; i < view.nodes.size(); ++i)
    out += " v" + std::to_string(i) + " [width=" + Inches(BoxWidth(view.nodes[i])) +
           " height=" + Inches(BoxHeight(view.nodes[i])) + "];\n";
  for (const ViewEdge& e : view.edges) out += " v" + std::to_string(e.from) + " -> v" + std::to_string(e.to) + ";\n";
  return out + "}\n";
}

std::string CallDot(const Call& call, const GraphView& view, const std::vector<RepeatGroup>& groups, bool cluster) {
  double slowest = 0;
  for (const Node& n : call.nodes)
    if (std::isfinite(n.duration_us)) slowest = std::max(slowest, n.duration_us);
  const std::string prefix = cluster ? "c" + std::to_string(call.index) + "_" : "";
  const std::string title = "call " + std::to_string(call.index) + ": " + call.api + ", " +
                            std::to_string(call.nodes.size()) + " nodes, " + HumanMicros(call.duration_us);
  std::string out = cluster ? " subgraph " + DotQuote("cluster_call" + std::to_string(call.index)) + " {\n"
                            : "digraph " + DotQuote("call " + std::to_string(call.index)) + " {\n";
  out += "  label=" + DotQuote(title) + ";\n  labelloc=t;\n";
  if (!cluster) out += "  node [shape=box style=\"rounded,filled\" fontname=monospace fontsize=10];\n";
  for (const ViewNode& v : view.nodes) {
    std::string label = v.label, attrs;
    if (v.group >= 0) {
      const RepeatGroup& g = groups[size_t(v.group)];
      label += "\n" + std::to_string(g.nodes() / std::max<int64_t>(1, g.count())) + " nodes each";
      attrs = " shape=box3d fillcolor=\"0.6 0.15 1.0\"";
    } else {
      const Node& n = call.nodes[size_t(v.node)];
      label += "\n" + HumanMicros(n.duration_us);
      std::string marks;
      for (const Hook& h : n.hooks) marks += std::string(marks.empty() ? "" : ", ") + HookKindName(h.kind);
      if (!marks.empty()) label += "\nhooks: " + marks;
      attrs = " fillcolor=" + DotQuote(HeatColor(slowest > 0 ? n.duration_us / slowest : 0));
      if (!n.hooks.empty()) attrs += " peripheries=2";
      if (n.leaf) attrs += " shape=ellipse";
      if (!n.executed) attrs += " style=dashed";
    }
    out += "  " + prefix + v.key + " [label=" + DotQuote(label) + attrs + "];\n";
  }
  for (const ViewEdge& e : view.edges) {
    out += "  " + prefix + view.nodes[size_t(e.from)].key + " -> " + prefix + view.nodes[size_t(e.to)].key;
    if (e.count > 1) out += " [label=" + DotQuote("\u00d7" + std::to_string(e.count)) + "]";
    out += ";\n";
  }
  return out + (cluster ? " }\n" : "}\n");
}

}  // namespace cautograd
