// cautograd record: run a built-in model, or any program, under the
// recorder and write one trace.
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <c10/util/Type.h>

#include <CLI/CLI.hpp>

#include "lib/models/models.h"
#include "lib/recorder/recorder.h"
#include "lib/shim/launcher.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

class RecordCommand : public Command {
 public:
  const char* name() const override { return "record"; }
  const char* description() const override {
    return "Record every backward call of a built-in model (--model) or of any program (-- COMMAND...) "
           "into one trace.";
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
    app->add_option("--max-calls", max_calls_, "Stop recording after this many calls (-- COMMAND only)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("-o,--output", output_, "Trace file to write (written atomically)");
    app->add_option("command", command_,
                    "A program to record, after '--': a C++ program linked against Debian's libtorch, or "
                    "/usr/bin/python3 with Debian's python3-torch. Its exit status, stdout and stderr pass "
                    "through.");
  }

  int Run() override {
    if (list_) {
      size_t width = 0;
      for (const ModelInfo& m : BuiltinModels()) width = std::max(width, m.name.size());
      for (const ModelInfo& m : BuiltinModels())
        std::cout << m.name << std::string(width + 2 - m.name.size(), ' ') << m.description << "\n";
      return kExitOk;
    }
    if (!model_.empty() && !command_.empty())
      return Fail(name(), "give --model or a command after '--', not both", kExitBadInput);
    if (model_.empty() && command_.empty())
      return Fail(
          name(),
          "nothing to record. Use --model NAME ('cautograd record --list' lists them) or -- COMMAND...",
          kExitBadInput);
    if (output_.empty()) return Fail(name(), "no output file. Use -o FILE.", kExitBadInput);
    RecorderOptions options;
    ParseValuesMode(values_, &options.values);
    std::string err;
    if (!CallFilter::Parse(calls_, &options.calls, &err)) return Fail(name(), err, kExitBadInput);
    if (!command_.empty()) return RecordProgram(options);
    if (max_calls_ >= 0) options.calls.max_calls = max_calls_;
    if (!FindModel(model_))
      return Fail(name(), "unknown model '" + model_ + "'. 'cautograd record --list' lists them.",
                  kExitBadInput);

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
    std::cerr << "recorded " << trace.calls.size() << " backward call" << (trace.calls.size() == 1 ? "" : "s")
              << " of model '" << model_ << "' (" << nodes << " nodes, " << ops << " ops) to " << output_
              << "\n";
    return kExitOk;
  }

 private:
  // Runs the command with the shim preloaded, then turns the call files it
  // left into the trace. Returns the command's own exit status.
  int RecordProgram(const RecorderOptions& options) {
    std::string err, shim;
    if (!FindShim("/proc/self/exe", &shim, &err)) return Fail(name(), err, kExitFailure);
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void*>(&c10::demangle), &info) || !info.dli_fname)
      return Fail(name(), "cannot tell which libtorch this cautograd uses", kExitFailure);
    if (!CheckCommand(command_, info.dli_fname, &err)) return Fail(name(), err, kExitBadInput);

    LaunchOptions launch;
    launch.command = command_;
    launch.shim = shim;
    launch.values = options.values;
    launch.calls = calls_;
    launch.max_calls = max_calls_;
    std::string pattern = output_ + ".calls-XXXXXX";
    if (!mkdtemp(&pattern[0]))
      return Fail(
          name(),
          output_ + ": cannot create a folder beside it for the recorded calls: " + std::strerror(errno),
          kExitFailure);
    launch.dir = pattern;
    int status = 0;
    if (!RunWithShim(launch, &status, &err)) {
      RemoveCallDir(launch.dir);
      return Fail(name(), err, kExitFailure);
    }
    int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    Trace trace;
    if (!AssembleCalls(launch.dir, &trace, &err)) {
      Fail(name(), err + " (the recorded calls are left in " + launch.dir + ")", kExitFailure);
      return exit_code ? exit_code : int(kExitFailure);
    }
    if (trace.meta.tool_version.empty()) trace.meta = RecorderMeta(options.values);
    trace.meta.command = CommandLine();
    trace.meta.values = options.values;
    if (!WriteTraceFile(output_, trace, &err)) {
      Fail(name(), err + " (the recorded calls are left in " + launch.dir + ")", kExitFailure);
      return exit_code ? exit_code : int(kExitFailure);
    }
    RemoveCallDir(launch.dir);
    std::string how = WIFSIGNALED(status)
                          ? std::string(", which was killed by ") + strsignal(WTERMSIG(status))
                      : exit_code ? ", which exited with status " + std::to_string(exit_code)
                                  : "";
    std::cerr << "cautograd record: " << trace.calls.size() << " backward call"
              << (trace.calls.size() == 1 ? "" : "s") << " of '" << command_[0] << "'" << how
              << " recorded to " << output_ << "\n";
    return exit_code;
  }

  bool list_ = false;
  std::vector<std::string> command_;
  int64_t max_calls_ = -1;
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
