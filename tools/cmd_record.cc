// cautograd record: run a built-in model under the recorder, write a trace.
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "lib/models/models.h"
#include "lib/recorder/recorder.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

class RecordCommand : public Command {
 public:
  const char* name() const override { return "record"; }
  const char* description() const override {
    return "Run a built-in model's training steps and record every backward call into a trace.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_flag("--list", list_, "List the built-in models, one line each, and exit");
    app->add_option("--model,-m", model_, "Built-in model to run (see --list)");
    app->add_option("--steps", steps_, "Training steps to run (default: the model's own)")
        ->check(CLI::Range(1, 10000));
    app->add_option("--batch", batch_, "Batch size (default: the model's own)")->check(CLI::Range(1, 4096));
    app->add_option("--seed", seed_, "Seed for weights and inputs")->capture_default_str();
    app->add_option("--values", values_,
                    "Tensor values to keep: none, ints (integer and bool tensors, needed to replay "
                    "indexing ops), or all (every input, op output and final gradient)")
        ->check(CLI::IsMember({"none", "ints", "all"}))
        ->capture_default_str();
    app->add_option("--calls", calls_,
                    "Backward calls to record, counting from 0: all, N, A-B, every:N, or a comma list")
        ->capture_default_str();
    app->add_option("-o,--output", output_, "Trace file to write (written atomically)");
  }

  int Run() override {
    if (list_) {
      size_t width = 0;
      for (const ModelInfo& m : BuiltinModels()) width = std::max(width, m.name.size());
      for (const ModelInfo& m : BuiltinModels())
        std::cout << m.name << std::string(width + 2 - m.name.size(), ' ') << m.description << "\n";
      return kExitOk;
    }
    if (model_.empty())
      return Fail(name(), "no model given. Use --model NAME; 'cautograd record --list' lists them.",
                  kExitBadInput);
    if (!FindModel(model_))
      return Fail(name(), "unknown model '" + model_ + "'. 'cautograd record --list' lists them.",
                  kExitBadInput);
    if (output_.empty())
      return Fail(name(), "no output file. Use -o FILE.", kExitBadInput);

    RecorderOptions options;
    ParseValuesMode(values_, &options.values);
    std::string err;
    if (!CallFilter::Parse(calls_, &options.calls, &err)) return Fail(name(), err, kExitBadInput);

    ModelOptions model_options;
    model_options.steps = steps_;
    model_options.batch = batch_;
    model_options.seed = seed_;
    ModelRun run;
    Trace trace;
    {
      Recorder recorder(options);
      auto name_parameters = [&](const NamedTensors& named) { recorder.NameParameters(named); };
      if (!RunModel(model_, model_options, name_parameters, &run, &err))
        return Fail(name(), err, kExitBadInput);
      if (!recorder.error().empty()) return Fail(name(), recorder.error(), kExitFailure);
      trace = recorder.Finish();
    }
    trace.meta.command = CommandLine();
    trace.meta.seed = seed_;
    if (!WriteTraceFile(output_, trace, &err)) return Fail(name(), err, kExitFailure);

    int64_t nodes = 0, ops = 0;
    for (const Call& call : trace.calls) {
      nodes += int64_t(call.nodes.size());
      ops += int64_t(call.ops.size());
    }
    std::cerr << "recorded " << trace.calls.size() << " backward call"
              << (trace.calls.size() == 1 ? "" : "s") << " of model '" << model_ << "' (" << nodes
              << " nodes, " << ops << " ops) to " << output_ << "\n";
    return kExitOk;
  }

 private:
  bool list_ = false;
  std::string model_;
  int steps_ = 0;
  int batch_ = 0;
  uint64_t seed_ = 0;
  std::string values_ = "ints";
  std::string calls_ = "all";
  std::string output_;
};

}  // namespace

std::unique_ptr<Command> MakeRecordCommand() { return std::make_unique<RecordCommand>(); }

}  // namespace cautograd
