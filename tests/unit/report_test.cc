// lib/report: repeated structure, views, the layout reader, the HTML's
// escaping and the Chrome trace's nesting, on hand-built calls.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "lib/report/chrome_trace.h"
#include "lib/report/dot_text.h"
#include "lib/report/graph_view.h"
#include "lib/report/layout.h"
#include "lib/report/report.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

Node MakeNode(int64_t id, const std::string& type, std::vector<int64_t> next, int64_t exec) {
  Node n;
  n.id = id;
  n.type = type;
  for (int64_t t : next) n.next.push_back({t, 0});
  n.executed = exec >= 0;
  n.exec_order = exec;
  n.duration_us = 1;
  return n;
}

// loss -> `layers` x (Linear: Addmm -> {T -> leaf weight}, Relu) -> leaf
// input-ish end, each layer also feeding its own bias leaf. Nodes are
// numbered in execution order, leaves after.
Call LayeredCall(int layers) {
  Call call;
  std::vector<Node> inner;
  int64_t id = 0;
  const int64_t per_layer = 3;
  const int64_t first_leaf = 1 + layers * per_layer + 1;
  int64_t leaf = first_leaf;
  std::vector<Node> leaves;
  inner.push_back(MakeNode(id++, "MseLossBackward0", {1}, 0));
  for (int l = 0; l < layers; ++l) {
    const int64_t addmm = id, t = id + 1, relu = id + 2;
    const int64_t next_layer = relu + 1;
    inner.push_back(MakeNode(addmm, "AddmmBackward0", {leaf, t, relu}, addmm));
    inner.push_back(MakeNode(t, "TBackward0", {leaf + 1}, t));
    inner.push_back(MakeNode(relu, "ReluBackward0", {next_layer}, relu));
    for (int k = 0; k < 2; ++k) {
      Node lf = MakeNode(leaf, "torch::autograd::AccumulateGrad", {}, -1);
      lf.leaf = LeafInfo();
      lf.leaf->name = "layers." + std::to_string(l) + (k ? ".weight" : ".bias");
      leaves.push_back(lf);
      ++leaf;
    }
    id += per_layer;
  }
  inner.push_back(MakeNode(id, "ViewBackward0", {}, id));
  call.nodes = inner;
  for (Node& l : leaves) call.nodes.push_back(l);
  return call;
}

TEST(FindRepeats, FindsIdenticalLayersWithTheirLeaves) {
  const Call call = LayeredCall(6);
  const std::vector<RepeatGroup> groups = FindRepeats(call);
  ASSERT_EQ(groups.size(), 1u);
  const RepeatGroup& g = groups[0];
  EXPECT_EQ(g.period, 3);
  EXPECT_EQ(g.count(), 6);
  // Each layer's two leaves go with it: only it feeds them.
  for (const auto& instance : g.instances) EXPECT_EQ(instance.size(), 5u);
  EXPECT_EQ(g.Label(), "6 \u00d7 AddmmBackward0 \u2026 ReluBackward0");
}

TEST(FindRepeats, NothingBelowTheMinimum) {
  EXPECT_TRUE(FindRepeats(LayeredCall(2)).empty());  // 6 nodes < 8
  RepeatOptions few;
  few.min_nodes = 6;
  EXPECT_EQ(FindRepeats(LayeredCall(2), few).size(), 1u);
}

TEST(FindRepeats, ALayerThatDiffersBreaksTheRun) {
  Call call = LayeredCall(6);
  call.nodes[1 + 3 * 3].type = "GeluBackward0";  // layer 3's Addmm
  for (const RepeatGroup& g : FindRepeats(call))
    for (const auto& instance : g.instances)
      for (int64_t p : instance) EXPECT_NE(call.nodes[size_t(p)].type, "GeluBackward0");
}

TEST(FindRepeats, EdgesToNodesOutsideTheCallAreIgnored) {
  Call call = LayeredCall(4);
  call.nodes[0].next.push_back({999, 0});
  call.nodes[2].next.push_back({-5, 0});
  EXPECT_NO_FATAL_FAILURE(FindRepeats(call));
  EXPECT_NO_FATAL_FAILURE(BuildView(call, FindRepeats(call), {true}));
}

TEST(BuildView, CollapsedGroupIsOneBoxWithMergedEdges) {
  const Call call = LayeredCall(6);
  const std::vector<RepeatGroup> groups = FindRepeats(call);
  const GraphView full = BuildView(call, groups, {});
  EXPECT_EQ(full.nodes.size(), call.nodes.size());
  const GraphView collapsed = BuildView(call, groups, {true});
  // Loss, the box, the view node at the end: every layer node and leaf is in the box.
  ASSERT_EQ(collapsed.nodes.size(), 3u);
  EXPECT_EQ(collapsed.nodes[1].key, "g0");
  std::set<std::pair<int64_t, int64_t>> edges;
  for (const ViewEdge& e : collapsed.edges) {
    EXPECT_NE(e.from, e.to);
    edges.insert({e.from, e.to});
  }
  EXPECT_EQ(edges, (std::set<std::pair<int64_t, int64_t>>{{0, 1}, {1, 2}}));
}

TEST(NodeLabel, LeafNameOrShortType) {
  Node n = MakeNode(0, "torch::autograd::AccumulateGrad", {}, 0);
  EXPECT_EQ(NodeLabel(n), "AccumulateGrad");
  n.leaf = LeafInfo();
  n.leaf->name = "fc1.weight";
  EXPECT_EQ(NodeLabel(n), "fc1.weight");
}

TEST(DotText, QuotesWhatTheTraceSays) {
  EXPECT_EQ(DotQuote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
  Call call = LayeredCall(1);
  call.nodes[0].type = "Evil\"]; x [label=\"pwned";
  const std::string dot = CallDot(call, BuildView(call, {}, {}), {}, false);
  EXPECT_NE(dot.find("Evil\\\"]; x [label=\\\"pwned"), std::string::npos) << dot;
  EXPECT_EQ(dot.find("Evil\"]"), std::string::npos);
}

TEST(ParsePlainLayout, ReadsDotsPlainOutput) {
  const std::string plain =
      "graph 1 2 3\n"
      "node v0 1 2.5 0.5 0.25 \"\" solid box black lightgrey\n"
      "node v1 1 0.5 0.5 0.25 \"\" solid box black lightgrey\n"
      "edge v0 v1 4 1 2.4 1 2 1 1 1 0.6 solid black\n"
      "stop\n";
  Layout layout;
  std::string err;
  ASSERT_TRUE(ParsePlainLayout(plain, 2, &layout, &err)) << err;
  EXPECT_DOUBLE_EQ(layout.width, 144);
  EXPECT_DOUBLE_EQ(layout.height, 216);
  EXPECT_DOUBLE_EQ(layout.nodes[0].x, 72);
  EXPECT_DOUBLE_EQ(layout.nodes[0].y, 36);  // y flipped: 3 - 2.5 inches
  ASSERT_EQ(layout.edges.size(), 1u);
  EXPECT_EQ(layout.edges[0].points.size(), 8u);
}

TEST(ParsePlainLayout, RefusesOutputMissingANode) {
  Layout layout;
  std::string err;
  EXPECT_FALSE(ParsePlainLayout("graph 1 2 3\nnode v0 1 1 1 1\nstop\n", 2, &layout, &err));
  EXPECT_NE(err.find("node 1"), std::string::npos);
  EXPECT_FALSE(ParsePlainLayout("", 0, &layout, &err));
}

TEST(ScriptSafeJson, NothingCanEndTheScriptElement) {
  nlohmann::json j = {{"name", "</script><script>alert(1)</script><!-- & \u2028"}};
  const std::string text = ScriptSafeJson(j);
  for (const char* bad : {"<", ">", "&", "\u2028"}) EXPECT_EQ(text.find(bad), std::string::npos) << bad;
  EXPECT_EQ(nlohmann::json::parse(text), j);  // and it reads back unchanged
}

TEST(ScriptSafeJson, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json j = {{"name", std::string("bad \xff\xfe utf8")}};
  std::string text;
  EXPECT_NO_THROW(text = ScriptSafeJson(j));
  EXPECT_NE(text.find("bad"), std::string::npos);
}

TEST(ChromeTrace, OpsNestInsideTheirNodeAndNothingOverlaps) {
  Trace trace = SmallTrace();
  Call& call = trace.calls[0];
  call.nodes[0].start_us = 0;
  call.nodes[0].duration_us = 4;
  call.nodes[1].start_us = 3;  // overlaps node 0 on the same thread
  call.nodes[1].duration_us = 4;
  for (Op& op : call.ops) {
    op.thread = 1;
    op.start_us = 1;
    op.duration_us = 100;  // longer than any node: clamped
  }
  const nlohmann::json out = ChromeTraceJson(trace, "t.cag");
  std::vector<std::pair<double, double>> nodes, ops;
  for (const auto& e : out["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const double ts = e["ts"], dur = e["dur"];
    EXPECT_GE(dur, 0);
    (e["cat"] == "node" ? nodes : ops).push_back({ts, ts + dur});
  }
  ASSERT_FALSE(nodes.empty());
  std::sort(nodes.begin(), nodes.end());
  for (size_t i = 1; i < nodes.size(); ++i) EXPECT_LE(nodes[i - 1].second, nodes[i].first);
  for (const auto& op : ops) {
    bool inside = false;
    for (const auto& n : nodes) inside |= op.first >= n.first && op.second <= n.second;
    bool outside = true;
    for (const auto& n : nodes) outside &= op.second <= n.first || op.first >= n.second;
    EXPECT_TRUE(inside || outside) << op.first << " " << op.second;
  }
}

TEST(ChromeTrace, TimesThatAreNotNumbersBecomeZero) {
  Trace trace = SmallTrace();
  Call& call = trace.calls[0];
  call.nodes[0].start_us = std::nan("");
  call.nodes[1].duration_us = INFINITY;
  call.ops[0].start_us = -INFINITY;
  call.duration_us = std::nan("");
  const nlohmann::json out = ChromeTraceJson(trace, "t.cag");
  for (const auto& e : out["traceEvents"]) {
    if (e["ph"] != "X") continue;
    EXPECT_TRUE(e["ts"].is_number()) << e.dump();
    EXPECT_TRUE(e["dur"].is_number()) << e.dump();
  }
}

TEST(DotText, AnInfiniteTimeColoursNothingNaN) {
  Call call = LayeredCall(1);
  call.nodes[1].duration_us = INFINITY;
  const std::string dot = CallDot(call, BuildView(call, {}, {}), {}, false);
  EXPECT_EQ(dot.find("nan"), std::string::npos) << dot;
}

}  // namespace
}  // namespace cautograd
