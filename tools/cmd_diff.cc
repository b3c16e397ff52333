// cautograd diff: what changed between two traces, for a person (text), a
// tool (JSON) or a pull request (Markdown); exit 1 when a group named by
// --fail-on differs.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/diff/diff.h"
#include "lib/diff/render.h"
#include "tools/command.h"

namespace cautograd {

namespace {

// Colour only for a person at a terminal that wants it (https://no-color.org).
bool ColorWanted() {
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR") && term && std::string(term) != "dumb";
}

class DiffCommand : public Command {
 public:
  const char* name() const override { return "diff"; }
  const char* description() const override {
    return "What changed between two traces: graph, guards, ops, numerics, timing. Exit 1 on a --fail-on "
           "difference.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("A", path_a_, "The trace to compare against (the golden one)")->required();
    app->add_option("B", path_b_, "The trace to compare (the fresh one)")->required();
    app->add_option("--call", call_, "Compare call K of each trace (default: every call, paired by index)")
        ->check(CLI::NonNegativeNumber);
    app->add_option(
           "--fail-on", fail_on_,
           "Groups whose differences fail (exit 1): graph, guards, ops, numerics, timing, all or none")
        ->capture_default_str();
    timing_threshold_option_ =
        app->add_option(
               "--timing-threshold", timing_threshold_,
               "Percent slower or faster that counts as a timing difference; giving it compares timing")
            ->capture_default_str()
            ->check(CLI::NonNegativeNumber);
    app->add_option("--format", format_, "text, json or markdown")->capture_default_str();
    app->add_option("--rtol", rtol_, "Relative tolerance for values (default: by dtype, as torch.testing)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--atol", atol_, "Absolute tolerance for values (default: by dtype, as torch.testing)")
        ->check(CLI::NonNegativeNumber);
  }

  int Run() override {
    GroupSet fail_on = 0;
    std::string bad;
    if (!ParseGroupSet(fail_on_, &fail_on, &bad))
      return Fail(
          name(),
          "unknown group '" + bad + "' in --fail-on; use graph, guards, ops, numerics, timing, all or none",
          kExitBadInput);
    if (format_ != "text" && format_ != "json" && format_ != "markdown")
      return Fail(name(), "unknown --format '" + format_ + "'; use text, json or markdown", kExitBadInput);

    Trace a, b;
    std::string err;
    if (!ReadTracePair(path_a_, path_b_, &a, &b, &err)) return Fail(name(), err, kExitBadInput);
    for (const auto& [path, trace] :
         {std::pair<const std::string&, const Trace&>{path_a_, a}, {path_b_, b}}) {
      if (call_ >= int64_t(trace.calls.size()))
        return Fail(name(),
                    "no call " + std::to_string(call_) + " in '" + path + "': it has " +
                        std::to_string(trace.calls.size()) +
                        " (numbered from 0). Use --call with one both have",
                    kExitBadInput);
    }

    DiffOptions options;
    options.call = call_;
    options.rtol = rtol_;
    options.atol = atol_;
    options.timing = (fail_on & GroupBit(DiffGroup::kTiming)) || timing_threshold_option_->count() > 0;
    options.timing_threshold_percent = timing_threshold_;
    TraceDiff diff;
    if (!DiffTraces(a, b, options, &diff, &err)) return Fail(name(), err, kExitBadInput);

    RenderOptions render;
    render.a_name = path_a_;
    render.b_name = path_b_;
    render.fail_on = fail_on;
    if (format_ == "json") {
      std::cout << RenderJson(diff, render);
    } else if (format_ == "markdown") {
      render.listed_per_group = 5;  // a comment stays short; the rest is folded
      std::cout << RenderMarkdown(diff, render);
    } else {
      render.color = ColorWanted();
      std::cout << RenderText(diff, render);
    }
    std::cout.flush();
    return diff.Fails(fail_on) ? kExitDifferences : kExitOk;
  }

 private:
  std::string path_a_, path_b_;
  int64_t call_ = -1;
  std::string fail_on_ = "graph,guards,numerics";  // kDefaultFailOn
  double timing_threshold_ = 10;
  CLI::Option* timing_threshold_option_ = nullptr;
  std::string format_ = "text";
  double rtol_ = -1, atol_ = -1;
};

}  // namespace

std::unique_ptr<Command> MakeDiffCommand() { return std::make_unique<DiffCommand>(); }

}  // namespace cautograd
