// cautograd dot: a call's backward graph as Graphviz DOT, for people who
// draw their own (`cautograd dot t.cag | dot -Tsvg > g.svg`).
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/report/dot_text.h"
#include "lib/report/graph_view.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

class DotCommand : public Command {
 public:
  const char* name() const override { return "dot"; }
  const char* description() const override {
    return "Print a call's backward graph as Graphviz DOT; --collapse draws repeated structure as one box.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "The trace")->required();
    app->add_option("--call", call_, "The call to draw (default: every call, one cluster each)")
        ->check(CLI::NonNegativeNumber);
    app->add_flag("--collapse", collapse_, "Draw each run of repeated structure (identical layers) as one box");
  }

  int Run() override {
    Trace trace;
    std::string err;
    ReadOptions metadata_only;
    metadata_only.values = false;
    if (!ReadTraceFile(path_, &trace, &err, metadata_only)) return Fail(name(), err, kExitBadInput);
    std::vector<const Call*> calls;
    for (const Call& c : trace.calls)
      if (call_ < 0 || c.index == call_) calls.push_back(&c);
    if (calls.empty())
      return Fail(name(),
                  call_ < 0 ? "'" + path_ + "' has no calls to draw"
                            : "no call " + std::to_string(call_) + " in '" + path_ + "': it has " +
                                  std::to_string(trace.calls.size()) + " (numbered from 0)",
                  kExitBadInput);
    auto draw = [&](const Call& call, bool cluster) {
      const std::vector<RepeatGroup> groups = collapse_ ? FindRepeats(call) : std::vector<RepeatGroup>();
      const GraphView view = BuildView(call, groups, std::vector<bool>(groups.size(), true));
      return CallDot(call, view, groups, cluster);
    };
    if (calls.size() == 1) {
      std::cout << draw(*calls[0], false);
      return kExitOk;
    }
    std::cout << "digraph " << DotQuote(path_) << " {\n  node [shape=box style=\"rounded,filled\" fontname=monospace "
                                                  "fontsize=10];\n";
    for (const Call* c : calls) std::cout << draw(*c, true);
    std::cout << "}\n";
    return kExitOk;
  }

 private:
  std::string path_;
  int64_t call_ = -1;
  bool collapse_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeDotCommand() { return std::make_unique<DotCommand>(); }

}  // namespace cautograd
