#include "lib/diff/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "lib/recompile/reason_text.h"

namespace cautograd {

namespace {

using nlohmann::json;

std::string Number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Recorded times to the microsecond: finer is the recorder's noise.
std::string Us(double us) { return std::to_string(std::llround(us)) + " us"; }

std::string Percent(double was, double is) {
  if (was <= 0) return "new";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.0f%%", (is - was) / was * 100);
  return buf;
}

std::string Plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string CallText(const Difference& d) {
  const int64_t call = d.call_a >= 0 ? d.call_a : d.call_b;
  if (d.call_a >= 0 && d.call_b >= 0 && d.call_a != d.call_b)
    return "calls " + std::to_string(d.call_a) + "/" + std::to_string(d.call_b);
  return "call " + std::to_string(call);
}

std::string OneNode(const NodeRef& n) {
  if (n.node_call < 0) return n.type + " (did not run" + (n.leaf.empty() ? "" : ", " + n.leaf) + ")";
  return NodeCallText(n.type, n.node_call, n.leaf);
}

// A node of both calls: "AddmmBackward0 (NodeCall 4)", or with its place in
// each where the two differ: "AddmmBackward0 (NodeCall 4 -> 9)".
std::string NodeText(const Difference& d) {
  const NodeRef& a = d.node_a;
  const NodeRef& b = d.node_b;
  if (a.id < 0) return b.id < 0 ? "the engine" : OneNode(b);
  if (b.id < 0 || a.node_call == b.node_call || a.node_call < 0 || b.node_call < 0) return OneNode(a);
  return a.type + " (NodeCall " + std::to_string(a.node_call) + " -> " + std::to_string(b.node_call) +
         (a.leaf.empty() ? "" : ", " + a.leaf) + ")";
}

std::string OpText(const Difference& d) {
  const OpRef& x = d.op_a.index >= 0 ? d.op_a : d.op_b;
  std::string where = std::to_string(x.index);
  if (d.op_a.index >= 0 && d.op_b.index >= 0 && d.op_a.index != d.op_b.index)
    where += " -> " + std::to_string(d.op_b.index);
  // Where the op ran, when not inside the node itself.
  if (x.phase == Op::Phase::kPreHook) where += ", in a pre-hook";
  if (x.phase == Op::Phase::kPostNode) where += ", after the node";
  return x.label + " (op " + where + ")";
}

std::string ChangesText(const std::vector<Change>& changes) {
  std::vector<std::string> parts;
  for (const Change& c : changes)
    parts.push_back(c.what + " " + (c.old_value.empty() ? "none" : c.old_value) + " -> " +
                    (c.new_value.empty() ? "none" : c.new_value));
  return Join(parts, "; ");
}

std::string ValuesText(const Difference& d) {
  const ValueDifference& v = *d.values;
  std::string where =
      d.tensor == "final .grad"
          ? "final .grad" + (d.node_a.leaf.empty() ? " of " + OneNode(d.node_a) : " of " + d.node_a.leaf)
          : d.tensor + " of " + OpText(d) + " in " + NodeText(d);
  return where + ": " + std::to_string(v.beyond) + " of " + std::to_string(v.numel) + " " + v.dtype +
         " elements beyond tolerance; worst [" + std::to_string(v.worst_index) + "] " +
         Number(v.old_at_worst) + " -> " + Number(v.new_at_worst) + " (max abs " + Number(v.max_abs) +
         ", max rel " + Number(v.max_rel) + "; rtol " + Number(v.tolerance.rtol) + ", atol " +
         Number(v.tolerance.atol) + ")";
}

// Groups in fail_on with a difference that is not an improvement.
std::vector<DiffGroup> FailingGroups(const TraceDiff& diff, GroupSet fail_on) {
  std::set<DiffGroup> failing;
  for (const Difference& d : diff.differences)
    if ((fail_on & GroupBit(d.group)) && !d.improvement) failing.insert(d.group);
  return {failing.begin(), failing.end()};
}

std::vector<DiffGroup> ComparedGroups(const TraceDiff& diff) {
  std::vector<DiffGroup> groups;
  for (DiffGroup g : kDiffGroups)
    if (g != DiffGroup::kTiming || diff.timing) groups.push_back(g);
  return groups;
}

const char* GroupHeadline(DiffGroup g) {
  switch (g) {
    case DiffGroup::kGraph:
      return "the backward graph changed";
    case DiffGroup::kNumerics:
      return "values differ beyond tolerance, worst first";
    case DiffGroup::kGuards:
      return "compiled autograd would recompile";
    case DiffGroup::kOps:
      return "ops of matched nodes changed";
    case DiffGroup::kTiming:
      return "slower or faster beyond the threshold";
  }
  return "";
}

// Each call's first divergence, unless it already heads the list.
std::vector<const Difference*> FirstDivergences(const std::vector<const Difference*>& group) {
  std::vector<const Difference*> out;
  for (size_t i = 1; i < group.size(); ++i)
    if (group[i]->first_divergence) out.push_back(group[i]);
  return out;
}

std::string Header(const TraceDiff& diff, const RenderOptions& o) {
  return o.a_name + " -> " + o.b_name + ": " + Plural(int64_t(diff.calls.size()), "call pair") +
         " compared; failing on " +
         (o.fail_on ? Join(GroupSetNames(o.fail_on), ", ") : std::string("nothing (--fail-on none)"));
}

// ANSI escapes, or nothing when colour is off.
struct Style {
  bool on;
  std::string Bold(const std::string& s) const { return on ? "\033[1m" + s + "\033[0m" : s; }
  std::string Red(const std::string& s) const { return on ? "\033[1;31m" + s + "\033[0m" : s; }
  std::string Green(const std::string& s) const { return on ? "\033[1;32m" + s + "\033[0m" : s; }
};

std::string MarkdownCode(std::string s) {
  for (char& c : s)
    if (c == '`') c = '\'';
  return "`" + s + "`";
}

json NodeJson(const NodeRef& n) {
  if (n.id < 0) return nullptr;
  json j = {{"id", n.id}, {"type", n.type}, {"node_call", n.node_call}};
  if (!n.leaf.empty()) j["leaf"] = n.leaf;
  return j;
}

json OpJson(const OpRef& op) {
  if (op.index < 0) return nullptr;
  return {{"index", op.index}, {"name", op.label}};
}

json NumberJson(double v) { return std::isfinite(v) ? json(v) : json(Number(v)); }

}  // namespace

std::string DifferenceText(const Difference& d) {
  const std::string call = CallText(d) + ": ";
  const std::string node = NodeText(d);
  const std::string& k = d.kind;
  if (d.group == DiffGroup::kGuards && d.reason) return call + ReasonText(*d.reason);
  if (d.group == DiffGroup::kNumerics && d.values) return call + ValuesText(d);
  if (k == "call_added") return call + "only in the second trace";
  if (k == "call_removed") return call + "only in the first trace";
  if (k == "call_changed") return call + ChangesText(d.changes);
  if (k == "node_added") return call + "node added: " + node;
  if (k == "node_removed") return call + "node removed: " + node;
  if (k == "node_retyped") return call + OneNode(d.node_a) + " is now " + OneNode(d.node_b);
  if (k == "node_runs")
    return call + node + (d.node_b.node_call >= 0 ? ": did not run, now runs" : ": ran, now does not run");
  if (k == "leaf_renamed")
    return call + node + ": parameter name " + d.changes[0].old_value + " -> " + d.changes[0].new_value;
  if (k == "hook_added") return call + node + ": hook added: " + d.changes[0].new_value;
  if (k == "hook_removed") return call + node + ": hook removed: " + d.changes[0].old_value;
  if (k == "edges") return call + node + ": next edges changed: " + ChangesText(d.changes);
  if (k == "op_added") return call + "op added: " + OpText(d) + " in " + node;
  if (k == "op_removed") return call + "op removed: " + OpText(d) + " in " + node;
  if (k == "op_changed") return call + OpText(d) + " in " + node + ": " + ChangesText(d.changes);
  if (k == "call_slower" || k == "call_faster")
    return call + "the whole call " + Us(d.old_us) + " -> " + Us(d.new_us) + " (" +
           Percent(d.old_us, d.new_us) + ")";
  if (k == "node_slower" || k == "node_faster")
    return call + node + ": " + Us(d.old_us) + " -> " + Us(d.new_us) + " (" + Percent(d.old_us, d.new_us) +
           ")";
  return call + k + (d.changes.empty() ? "" : ": " + ChangesText(d.changes));
}

std::string VerdictText(const TraceDiff& diff, GroupSet fail_on) {
  const std::vector<DiffGroup> failing = FailingGroups(diff, fail_on);
  std::vector<std::string> fail_parts, other_parts, same;
  for (DiffGroup g : ComparedGroups(diff)) {
    const int64_t n = diff.Count(g);
    const std::string part = std::string(DiffGroupName(g)) + " (" + std::to_string(n) + ")";
    if (std::find(failing.begin(), failing.end(), g) != failing.end())
      fail_parts.push_back(part);
    else if (n > 0)
      other_parts.push_back(part);
    else
      same.push_back(DiffGroupName(g));
  }
  if (fail_parts.empty() && other_parts.empty()) return "SAME: no differences in " + Join(same, ", ");
  const std::string others = "differences in " + Join(other_parts, ", ") + ", not in --fail-on " +
                             (fail_on ? Join(GroupSetNames(fail_on), ",") : "none");
  if (fail_parts.empty()) return "PASS: " + others;
  return "FAIL: differences in " + Join(fail_parts, ", ") + (other_parts.empty() ? "" : "; also " + others);
}

std::string RenderText(const TraceDiff& diff, const RenderOptions& o) {
  const Style style{o.color};
  std::string out = Header(diff, o) + "\n";
  std::vector<std::string> same;
  for (DiffGroup g : ComparedGroups(diff)) {
    const std::vector<const Difference*> group = diff.InGroup(g);
    if (group.empty()) {
      same.push_back(DiffGroupName(g));
      continue;
    }
    const bool fails = (o.fail_on & GroupBit(g)) != 0;
    out += "\n" +
           style.Bold(std::string(DiffGroupName(g)) + ": " + Plural(int64_t(group.size()), "difference")) +
           ", " + GroupHeadline(g) + (fails ? "" : " (not in --fail-on)") + "\n";
    for (size_t i = 0; i < group.size() && i < o.listed_per_group; ++i)
      out += "  " + DifferenceText(*group[i]) + "\n";
    if (group.size() > o.listed_per_group)
      out += "  ... " + std::to_string(group.size() - o.listed_per_group) +
             " more (--format json lists every one)\n";
    for (const Difference* first : FirstDivergences(group))
      out += "  first divergence: " + DifferenceText(*first) + "\n";
    // The first reason is the most telling (recompile orders them so); its
    // hint is the one to act on.
    if (g == DiffGroup::kGuards && group[0]->reason && !ReasonHint(*group[0]->reason).empty())
      out += "  hint: " + ReasonHint(*group[0]->reason) + "\n";
  }
  if (!same.empty()) out += "\nno differences in " + Join(same, ", ") + "\n";
  if (!diff.timing)
    out += "timing not compared (it is noisy): add timing to --fail-on or give --timing-threshold\n";
  for (const std::string& note : diff.notes) out += "note: " + note + "\n";
  const std::string verdict = VerdictText(diff, o.fail_on);
  const bool failed = diff.Fails(o.fail_on);
  out += "\n" +
         (failed                     ? style.Red(verdict)
          : diff.differences.empty() ? style.Green(verdict)
                                     : style.Bold(verdict)) +
         "\n";
  return out;
}

std::string RenderJson(const TraceDiff& diff, const RenderOptions& o) {
  json j;
  j["a"] = o.a_name;
  j["b"] = o.b_name;
  j["fail_on"] = GroupSetNames(o.fail_on);
  j["result"] = diff.Fails(o.fail_on) ? "fail" : diff.differences.empty() ? "same" : "pass";
  j["verdict"] = VerdictText(diff, o.fail_on);
  json failing = json::array();
  for (DiffGroup g : FailingGroups(diff, o.fail_on)) failing.push_back(DiffGroupName(g));
  j["failing"] = failing;
  j["counts"] = json::object();
  for (DiffGroup g : ComparedGroups(diff)) j["counts"][DiffGroupName(g)] = diff.Count(g);
  j["timing_compared"] = diff.timing;
  j["calls"] = json::array();
  for (const CallPairSummary& s : diff.calls)
    j["calls"].push_back({{"a", s.call_a},
                          {"b", s.call_b},
                          {"nodes_a", s.nodes_a},
                          {"nodes_b", s.nodes_b},
                          {"nodes_matched", s.nodes_matched},
                          {"ops_a", s.ops_a},
                          {"ops_b", s.ops_b},
                          {"ops_matched", s.ops_matched},
                          {"values_compared", s.values_compared},
                          {"values_not_comparable", s.values_not_comparable},
                          {"guards", s.guards_hit ? "hit" : "miss"}});
  j["notes"] = diff.notes;
  j["differences"] = json::array();
  for (const Difference& d : diff.differences) {
    json jd = {{"group", DiffGroupName(d.group)}, {"kind", d.kind}, {"text", DifferenceText(d)}};
    jd["call_a"] = d.call_a >= 0 ? json(d.call_a) : json(nullptr);
    jd["call_b"] = d.call_b >= 0 ? json(d.call_b) : json(nullptr);
    if (d.node_a.id >= 0 || d.node_b.id >= 0) {
      jd["node_a"] = NodeJson(d.node_a);
      jd["node_b"] = NodeJson(d.node_b);
    }
    if (d.op_a.index >= 0 || d.op_b.index >= 0) {
      jd["op_a"] = OpJson(d.op_a);
      jd["op_b"] = OpJson(d.op_b);
    }
    if (d.tensor_a >= 0) jd["tensor_a"] = d.tensor_a;
    if (d.tensor_b >= 0) jd["tensor_b"] = d.tensor_b;
    if (!d.tensor.empty()) jd["tensor"] = d.tensor;
    if (!d.changes.empty()) {
      jd["changes"] = json::array();
      for (const Change& c : d.changes)
        jd["changes"].push_back({{"what", c.what}, {"old", c.old_value}, {"new", c.new_value}});
    }
    if (d.reason) {
      jd["reason"] = {{"kind", ReasonKindName(d.reason->kind)}, {"node_call", d.reason->node_call}};
      if (d.reason->kind == MissReason::Kind::kSize) jd["reason"]["size_index"] = d.reason->size_index;
      if (!d.reason->role.empty()) jd["reason"]["role"] = d.reason->role;
      if (d.reason->dim >= 0) jd["reason"]["dim"] = d.reason->dim;
      if (!d.reason->log.empty()) jd["reason"]["log"] = d.reason->log;
      const std::string hint = ReasonHint(*d.reason);
      if (!hint.empty()) jd["reason"]["hint"] = hint;
    }
    if (d.values) {
      const ValueDifference& v = *d.values;
      jd["values"] = {{"dtype", v.dtype},
                      {"numel", v.numel},
                      {"beyond", v.beyond},
                      {"worst_index", v.worst_index},
                      {"old_at_worst", NumberJson(v.old_at_worst)},
                      {"new_at_worst", NumberJson(v.new_at_worst)},
                      {"max_abs", NumberJson(v.max_abs)},
                      {"max_rel", NumberJson(v.max_rel)},
                      {"tolerances_off", NumberJson(v.excess)},
                      {"rtol", v.tolerance.rtol},
                      {"atol", v.tolerance.atol}};
      jd["first_divergence"] = d.first_divergence;
    }
    if (d.group == DiffGroup::kTiming) {
      jd["old_us"] = d.old_us;
      jd["new_us"] = d.new_us;
      jd["improvement"] = d.improvement;
    }
    j["differences"].push_back(jd);
  }
  return j.dump(2) + "\n";
}

std::string RenderMarkdown(const TraceDiff& diff, const RenderOptions& o) {
  const std::vector<DiffGroup> failing = FailingGroups(diff, o.fail_on);
  std::vector<std::string> failing_names;
  for (DiffGroup g : failing) failing_names.push_back(DiffGroupName(g));
  std::string title = diff.Fails(o.fail_on)      ? "FAIL: " + Join(failing_names, ", ") + " changed"
                      : diff.differences.empty() ? "no differences"
                                                 : "PASS, with differences not in --fail-on";
  std::string out = "### cautograd diff: " + title + "\n\n";
  out += MarkdownCode(o.a_name) + " → " + MarkdownCode(o.b_name) + ": " +
         Plural(int64_t(diff.calls.size()), "call pair") + "; failing on " +
         (o.fail_on ? Join(GroupSetNames(o.fail_on), ", ") : std::string("nothing")) + ".\n\n";
  out += "| group | differences | fails the check |\n|---|---:|---|\n";
  for (DiffGroup g : ComparedGroups(diff)) {
    const int64_t n = diff.Count(g);
    const bool fails = std::find(failing.begin(), failing.end(), g) != failing.end();
    out += std::string("| ") + DiffGroupName(g) + " | " + std::to_string(n) + " | " +
           (fails   ? "**yes**"
            : n > 0 ? "no"
                    : "") +
           " |\n";
  }
  // Each group with differences: its first few, the rest folded; a group
  // that does not fail the check, folded whole.
  constexpr size_t kMaxFolded = 100;
  for (DiffGroup g : ComparedGroups(diff)) {
    const std::vector<const Difference*> group = diff.InGroup(g);
    if (group.empty()) continue;
    const bool fails = std::find(failing.begin(), failing.end(), g) != failing.end();
    const size_t shown = fails ? std::min(group.size(), o.listed_per_group) : 0;
    out += std::string("\n**") + DiffGroupName(g) + "**: " + GroupHeadline(g) +
           (fails ? "" : " (not failing)") + "\n\n";
    for (size_t i = 0; i < shown; ++i) out += "- " + MarkdownCode(DifferenceText(*group[i])) + "\n";
    for (const Difference* first : FirstDivergences(group))
      out += "\nFirst divergence: " + MarkdownCode(DifferenceText(*first)) + "\n";
    if (group.size() > shown) {
      const size_t folded = std::min(group.size() - shown, kMaxFolded);
      out += std::string(shown ? "\n" : "") + "<details><summary>" + std::to_string(group.size() - shown) +
             (shown               ? " more"
              : group.size() == 1 ? " difference"
                                  : " differences") +
             "</summary>\n\n";
      for (size_t i = shown; i < shown + folded; ++i)
        out += "- " + MarkdownCode(DifferenceText(*group[i])) + "\n";
      if (group.size() - shown > folded)
        out += "- ... " + std::to_string(group.size() - shown - folded) +
               " more: run `cautograd diff --format json`\n";
      out += "\n</details>\n";
    }
  }
  if (!diff.notes.empty()) {
    out += "\n";
    for (const std::string& note : diff.notes) out += "> " + note + "\n";
  }
  return out;
}

}  // namespace cautograd
