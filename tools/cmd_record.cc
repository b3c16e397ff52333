// cautograd record: run any program (-- COMMAND...) with the recorder
// loaded into the processes that use a libtorch this build has a backend
// for, and assemble one trace; a built-in model (--model) is run by a
// backend (tools/cmd_record_model.cc).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <sys/wait.h>

#include <CLI/CLI.hpp>

#include "lib/shim/backends.h"
#include "lib/shim/launcher.h"
#include "lib/trace/call_filter.h"
#include "lib/trace/meta.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"
#include "tools/record_flags.h"

namespace cautograd {

namespace {

class RecordCommand : public Command {
 public:
  const char* name() const override { return "record"; }
  const char* description() const override {
    return "Record every backward call of a built-in model (--model) or of any program (-- COMMAND...) "
           "into one trace.";
  }

  void AddFlags(CLI::App* app) override { AddRecordFlags(app, &f_, /*with_torch=*/true); }

  int Run() override {
    std::string err;
    if (!CheckRecordFlags(f_, &err)) return Fail(name(), err, kExitBadInput);
    if (!FindBackends("/proc/self/exe", &backends_, &err)) return Fail(name(), err, kExitFailure);
    if (f_.torch.empty())
      if (const char* env = std::getenv("CAUTOGRAD_TORCH")) f_.torch = env;
    if (!f_.command.empty()) return RecordProgram();
    // --model and --list: the backend parses the same flags again.
    const Backend* backend = ChooseBackend(backends_, f_.torch, &err);
    if (!backend) return Fail(name(), err, kExitBadInput);
    std::vector<std::string> args(CommandLine().begin() + 2, CommandLine().end());
    std::string ignored;
    TakeTorchFlag(&args, &ignored);
    return ExecBackend(*backend, name(), args);
  }

 private:
  // The backend for the program's own libtorch, or for --torch when the
  // program loads none itself.
  const Backend* BackendFor(const ProgramTorch& torch, std::string* err) {
    if (!torch.uses_torch) return ChooseBackend(backends_, f_.torch, err);
    const Backend* b = BackendForLibc10(backends_, torch.libc10);
    if (!b) {
      std::string what = torch.python.empty() ? "'" + f_.command[0] + "' uses the libtorch at " + torch.libc10
                                              : "'" + torch.python + "' imports torch " + torch.version +
                                                    " (" + torch.libc10 + ")";
      *err = what + ", which this cautograd has no backend for (it has " + BackendList(backends_) + "); " +
             HowToAddBackend(torch.python.empty() ? "a Python with that torch" : torch.python);
      return nullptr;
    }
    if (!f_.torch.empty() && f_.torch != b->version) {
      *err = "--torch " + f_.torch + ", but '" + f_.command[0] + "' uses torch " + b->version +
             "; leave --torch out, the program's own torch decides";
      return nullptr;
    }
    return b;
  }

  // Runs the command with the preload library, then turns the call files
  // the shim left into the trace. Returns the command's own exit status.
  int RecordProgram() {
    ValuesMode values = ValuesMode::kInts;
    std::string err;
    if (!ParseValuesMode(f_.values, &values))
      return Fail(name(), "bad --values '" + f_.values + "'", kExitBadInput);
    CallFilter calls;
    if (!CallFilter::Parse(f_.calls, &calls, &err)) return Fail(name(), err, kExitBadInput);
    ProgramTorch torch;
    if (!FindProgramTorch(f_.command, &torch, &err)) return Fail(name(), err, kExitBadInput);
    const Backend* backend = BackendFor(torch, &err);
    if (!backend) return Fail(name(), err, kExitBadInput);

    LaunchOptions launch;
    if (!FindPreload("/proc/self/exe", &launch.preload, &err)) return Fail(name(), err, kExitFailure);
    launch.command = f_.command;
    launch.shim = backend->shim;
    launch.libc10 = backend->libc10;
    launch.values = values;
    launch.calls = f_.calls;
    launch.max_calls = f_.max_calls;
    launch.compress = f_.compress;
    std::string pattern = f_.output + ".calls-XXXXXX";
    if (!mkdtemp(&pattern[0]))
      return Fail(
          name(),
          f_.output + ": cannot create a folder beside it for the recorded calls: " + std::strerror(errno),
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
    if (trace.meta.tool_version.empty()) trace.meta = NewMeta(values, backend->version);
    trace.meta.command = CommandLine();
    trace.meta.values = values;
    if (!WriteTraceFile(f_.output, trace, &err, RecordWriteOptions(f_))) {
      Fail(name(), err + " (the recorded calls are left in " + launch.dir + ")", kExitFailure);
      return exit_code ? exit_code : int(kExitFailure);
    }
    RemoveCallDir(launch.dir);
    std::string how = WIFSIGNALED(status)
                          ? std::string(", which was killed by ") + strsignal(WTERMSIG(status))
                      : exit_code ? ", which exited with status " + std::to_string(exit_code)
                                  : "";
    std::cerr << "cautograd record: " << trace.calls.size() << " backward call"
              << (trace.calls.size() == 1 ? "" : "s") << " of '" << f_.command[0] << "'" << how
              << " recorded to " << f_.output << " (torch " << backend->version << ")\n"
              << "cautograd record: " << ValuesLine(trace) << "\n";
    return ReportSkipped(trace, f_.allow_skipped, exit_code);
  }

  RecordFlags f_;
  std::vector<Backend> backends_;
};

}  // namespace

std::unique_ptr<Command> MakeRecordCommand() { return std::make_unique<RecordCommand>(); }

}  // namespace cautograd
