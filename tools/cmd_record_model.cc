// A backend's `record`: run a built-in model under the recorder and write
// one trace. (`cautograd record` runs programs itself and hands --model and
// --list here.)
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/models/models.h"
#include "lib/recorder/recorder.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"
#include "tools/record_flags.h"

namespace cautograd {

namespace {

class RecordModelCommand : public Command {
 public:
  const char* name() const override { return "record"; }
  const char* description() const override {
    return "Record every backward call of a built-in model (--model) into one trace.";
  }

  void AddFlags(CLI::App* app) override { AddRecordFlags(app, &f_, /*with_torch=*/false); }

  int Run() override {
    if (f_.list) {
      size_t width = 0;
      for (const ModelInfo& m : BuiltinModels()) width = std::max(width, m.name.size());
      for (const ModelInfo& m : BuiltinModels())
        std::cout << m.name << std::string(width + 2 - m.name.size(), ' ') << m.description << "\n";
      return kExitOk;
    }
    std::string err;
    if (!CheckRecordFlags(f_, &err)) return Fail(name(), err, kExitBadInput);
    if (!f_.command.empty())
      return Fail(name(), "this is a backend: record programs with 'cautograd record -- COMMAND'",
                  kExitBadInput);
    RecorderOptions options;
    ParseValuesMode(f_.values, &options.values);
    if (!CallFilter::Parse(f_.calls, &options.calls, &err)) return Fail(name(), err, kExitBadInput);
    if (f_.max_calls >= 0) options.calls.max_calls = f_.max_calls;
    if (!FindModel(f_.model))
      return Fail(name(), "unknown model '" + f_.model + "'. 'cautograd record --list' lists them.",
                  kExitBadInput);

    ModelOptions model_options;
    model_options.steps = f_.steps;
    model_options.batch = f_.batch;
    model_options.seed = f_.seed;
    ModelRun run;
    Trace trace;
    {
      Recorder recorder(options);
      auto name_parameters = [&](const NamedTensors& named) { recorder.NameParameters(named); };
      if (!RunModel(f_.model, model_options, name_parameters, &run, &err))
        return Fail(name(), err, kExitBadInput);
      if (!recorder.error().empty()) return Fail(name(), recorder.error(), kExitFailure);
      trace = recorder.Finish();
    }
    trace.meta.command = CommandLine();
    trace.meta.seed = f_.seed;
    if (!WriteTraceFile(f_.output, trace, &err, RecordWriteOptions(f_))) return Fail(name(), err, kExitFailure);

    int64_t nodes = 0, ops = 0;
    for (const Call& call : trace.calls) {
      nodes += int64_t(call.nodes.size());
      ops += int64_t(call.ops.size());
    }
    std::cerr << "recorded " << trace.calls.size() << " backward call" << (trace.calls.size() == 1 ? "" : "s")
              << " of model '" << f_.model << "' (" << nodes << " nodes, " << ops << " ops) to " << f_.output
              << "\n" << ValuesLine(trace) << "\n";
    return ReportSkipped(trace, f_.allow_skipped, kExitOk);
  }

 private:
  RecordFlags f_;
};

}  // namespace

std::unique_ptr<Command> MakeRecordModelCommand() { return std::make_unique<RecordModelCommand>(); }

}  // namespace cautograd
