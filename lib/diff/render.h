// Renderings of a diff (lib/diff/diff.h): text for a person at a terminal,
// JSON for tools, Markdown for a pull-request comment. Each returns a string
// and prints nothing; golden files in tests/diff_golden/ check all three.
#pragma once

#include <cstddef>
#include <string>

#include "lib/diff/diff.h"

namespace cautograd {

struct RenderOptions {
  std::string a_name, b_name;  // the traces, as the user named them
  GroupSet fail_on = kDefaultFailOn;
  bool color = false;  // text: ANSI colours (the CLI sets it on a terminal only)
  // Text: differences listed per group before "... N more". Markdown: shown
  // before the rest is folded.
  size_t listed_per_group = 10;
};

// One line for one difference: "call 0: node added: ReluBackward0 (NodeCall 5)".
std::string DifferenceText(const Difference& d);

// The one-line verdict: "FAIL: differences in guards (14); also differences in
// ops (26), not in --fail-on graph,numerics,guards".
std::string VerdictText(const TraceDiff& diff, GroupSet fail_on);

std::string RenderText(const TraceDiff& diff, const RenderOptions& options);
std::string RenderJson(const TraceDiff& diff, const RenderOptions& options);
std::string RenderMarkdown(const TraceDiff& diff, const RenderOptions& options);

}  // namespace cautograd
