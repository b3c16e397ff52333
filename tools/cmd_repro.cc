// cautograd repro: a standalone program that reruns a call's recorded ops
// (or a range of them) on the recorded inputs and checks the recorded
// outputs, with nothing but torch: what a bug report asks for.
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/repro/python_repro.h"
#include "lib/shim/paths.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

// "dir/repro.py" -> "repro.bin": the side file's name, beside the program.
std::string DataName(const std::string& output) {
  std::string base = BaseName(output);
  if (base.size() > 3 && base.compare(base.size() - 3, 3, ".py") == 0) base.resize(base.size() - 3);
  return base + ".bin";
}

bool ParseRange(const std::string& text, int64_t* first, int64_t* last) {
  size_t used = 0;
  try {
    const size_t dash = text.find('-');
    *first = std::stoll(text.substr(0, dash), &used);
    if (used != (dash == std::string::npos ? text.size() : dash)) return false;
    if (dash == std::string::npos) {
      *last = *first;
    } else {
      const std::string tail = text.substr(dash + 1);
      *last = std::stoll(tail, &used);
      if (used != tail.size()) return false;
    }
  } catch (const std::exception&) {
    return false;
  }
  return *first >= 0 && *last >= *first;
}

class ReproCommand : public Command {
 public:
  const char* name() const override { return "repro"; }
  const char* description() const override {
    return "Write a standalone Python program that reruns a call's recorded ops on the recorded inputs and checks "
           "the recorded outputs, with nothing but torch.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "The trace (recorded with --values all, or inputs for a whole call)")->required();
    app->add_option("--call", call_, "The call, by its index (default: the first)")->check(CLI::NonNegativeNumber);
    app->add_option("--ops", ops_, "The ops to rerun, by index: K or A-B (default: every op of the call)");
    app->add_option("--emit", emit_, "The program's language: python")->required();
    app->add_option("-o,--output", output_, "The program to write; inputs too large to inline go in a .bin beside it")
        ->required();
    app->add_option("--inline-limit", inline_limit_, "Inputs up to this many bytes are written into the program")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
  }

  int Run() override {
    if (emit_ != "python") return Fail(name(), "unknown --emit '" + emit_ + "'; use python", kExitBadInput);
    ReproOptions options;
    if (!ops_.empty() && !ParseRange(ops_, &options.first_op, &options.last_op))
      return Fail(name(), "--ops '" + ops_ + "' is not K or A-B (op indices, A <= B)", kExitBadInput);
    Trace trace;
    std::string err;
    ReadOptions lazy;  // only the values the program needs are read, when it needs them
    lazy.values = false;
    if (!ReadTraceFile(path_, &trace, &err, lazy)) return Fail(name(), err, kExitBadInput);
    options.call = -1;
    for (size_t i = 0; i < trace.calls.size(); ++i)
      if (call_ < 0 ? i == 0 : trace.calls[i].index == call_) options.call = int64_t(i);
    if (options.call < 0)
      return Fail(name(),
                  trace.calls.empty() ? "'" + path_ + "' has no calls"
                                      : "no call " + std::to_string(call_) + " in '" + path_ + "'; it has " +
                                            std::to_string(trace.calls.size()) + " (numbered from 0)",
                  kExitBadInput);
    options.inline_limit = inline_limit_;
    options.data_name = DataName(output_);
    options.source = path_;
    Repro repro;
    if (!EmitPythonRepro(trace, options, &repro, &err)) return Fail(name(), err, kExitBadInput);
    const std::string data_path =
        output_.find('/') == std::string::npos ? options.data_name : DirName(output_) + "/" + options.data_name;
    if (!repro.data.empty() && !WriteFileAtomic(data_path, repro.data, &err))
      return Fail(name(), err, kExitFailure);
    if (!WriteFileAtomic(output_, repro.program, &err)) return Fail(name(), err, kExitFailure);
    std::cout << "wrote " << output_ << ": " << repro.ops << (repro.ops == 1 ? " op, " : " ops, ") << repro.checks
              << (repro.checks == 1 ? " recorded output" : " recorded outputs") << " to check\n";
    std::cout << "it holds recorded values (the model's weights, inputs or gradients): " << repro.inputs_inline
              << " inline (" << HumanBytes(repro.inline_bytes) << ")";
    if (!repro.data.empty())
      std::cout << ", " << repro.inputs_in_data << " in " << data_path << " ("
                << HumanBytes(int64_t(repro.data.size())) << ")";
    std::cout << "; run it with: python " << output_ << "\n";
    return kExitOk;
  }

 private:
  std::string path_, ops_, emit_, output_;
  int64_t call_ = -1;
  int64_t inline_limit_ = 4096;
};

}  // namespace

std::unique_ptr<Command> MakeReproCommand() { return std::make_unique<ReproCommand>(); }

}  // namespace cautograd
