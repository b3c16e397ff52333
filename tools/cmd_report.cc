// cautograd report: one self-contained HTML file to look at a trace (or two,
// with their diff) in a browser, from an attachment, offline.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "lib/report/report.h"
#include "lib/trace/call_filter.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

class ReportCommand : public Command {
 public:
  const char* name() const override { return "report"; }
  const char* description() const override {
    return "Write one self-contained HTML page to look at a trace (or two, with their diff): the graph, node "
           "details, time, recompiles.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", paths_, "The trace; give a second to show what changed from the first")
        ->required()
        ->expected(1, 2);
    app->add_option("-o,--output", output_, "HTML file to write (atomically: a new file renamed over the old)")
        ->required();
    app->add_option("--calls", calls_, "Calls to show, counting from 0: all, N, A-B, every:N, or a comma list")
        ->capture_default_str();
    app->add_option("--dot", dot_, "Graphviz's dot program, to lay out the graphs")->capture_default_str();
    app->add_option("--jobs", jobs_, "dot processes to run at once (default: the CPUs)")->check(CLI::PositiveNumber);
    app->add_option("--layout-timeout", layout_timeout_, "Seconds dot may take for one graph")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_option("--collapse-above", collapse_above_,
                    "Open a call with more nodes than this with its repeated structure collapsed")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app->add_flag("--no-graph", no_graph_, "Draw no graphs (no dot needed); everything else is shown");
  }

  int Run() override {
    CallFilter filter;
    std::string err;
    if (!CallFilter::Parse(calls_, &filter, &err)) return Fail(name(), "--calls: " + err, kExitBadInput);

    ReportOptions options;
    options.parallel = jobs_ > 0 ? jobs_ : int(std::max(1u, std::thread::hardware_concurrency()));
    options.open_collapsed_above = collapse_above_;
    if (no_graph_) {
      options.no_dot_reason = "the report was written with --no-graph.";
    } else {
      DotProgram dot;
      dot.timeout_s = layout_timeout_;
      if (FindDot(dot_, &dot, &err))
        options.dot = dot;
      else
        return Fail(name(), err + "; or pass --no-graph", kExitBadInput);
    }
    const bool terminal = isatty(STDERR_FILENO);
    options.progress = [&](const std::string& stage, size_t done, size_t total) {
      if (!terminal || total < 2) return;
      std::fprintf(stderr, "\r\033[Kcautograd report: %s %zu/%zu", stage.c_str(), done, total);
      if (done == total) std::fputc('\n', stderr);
    };

    std::vector<Trace> traces(paths_.size());
    if (paths_.size() == 2) {
      if (!ReadTracePair(paths_[0], paths_[1], &traces[0], &traces[1], &err)) return Fail(name(), err, kExitBadInput);
    } else {
      ReadOptions metadata_only;  // the page shows which values a trace kept, never their bytes
      metadata_only.values = false;
      if (!ReadTraceFile(paths_[0], &traces[0], &err, metadata_only)) return Fail(name(), err, kExitBadInput);
    }
    std::vector<ReportTrace> inputs;
    for (size_t i = 0; i < traces.size(); ++i) {
      std::vector<Call>& calls = traces[i].calls;
      calls.erase(std::remove_if(calls.begin(), calls.end(), [&](const Call& c) { return !filter.Selects(c.index); }),
                  calls.end());
      if (calls.empty())
        return Fail(name(), "no call of '" + paths_[i] + "' is chosen by --calls " + calls_, kExitBadInput);
      inputs.push_back({paths_[i], &traces[i]});
    }

    nlohmann::json data;
    if (!BuildReportData(inputs, options, &data, &err)) return Fail(name(), err, kExitBadInput);
    size_t failed = 0;
    std::string first_failure;
    for (const auto& layout : data["layouts"])
      if (layout.contains("error")) {
        if (!failed++) first_failure = layout["error"].get<std::string>();
      }
    if (failed)
      std::cerr << "cautograd report: " << failed << " of " << data["layouts"].size()
                << " graphs could not be laid out (the page says so where they would be): " << first_failure << "\n";
    const std::string html = RenderReportHtml(data);
    if (!WriteFileAtomic(output_, html, &err)) return Fail(name(), err, kExitFailure);
    size_t calls = 0;
    for (const Trace& t : traces) calls += t.calls.size();
    std::cout << "wrote " << output_ << " (" << HumanBytes(int64_t(html.size())) << "): " << calls
              << (calls == 1 ? " call, " : " calls, ") << data["layouts"].size() << " graph layouts"
              << (paths_.size() == 2 ? ", with the diff" : "") << "\n";
    return failed ? kExitFailure : kExitOk;
  }

 private:
  std::vector<std::string> paths_;
  std::string output_;
  std::string calls_ = "all";
  std::string dot_ = "dot";
  int jobs_ = 0;
  double layout_timeout_ = 300;
  int64_t collapse_above_ = 300;
  bool no_graph_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeReportCommand() { return std::make_unique<ReportCommand>(); }

}  // namespace cautograd
