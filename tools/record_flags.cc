#include "tools/record_flags.h"

#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/trace/human.h"
#include "lib/trace/trace.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

void AddRecordFlags(CLI::App* app, RecordFlags* f, bool with_torch) {
  app->add_flag("--list", f->list, "List the built-in models, one line each, and exit");
  app->add_option("--model,-m", f->model, "Built-in model to run (see --list)");
  app->add_option("--steps", f->steps, "Training steps to run (default: the model's own)")
      ->check(CLI::Range(1, 10000));
  app->add_option("--batch", f->batch, "Batch size (default: the model's own)")->check(CLI::Range(1, 4096));
  app->add_option("--seed", f->seed, "Seed for weights and inputs")->capture_default_str();
  app->add_option("--values", f->values,
                  "Tensor values to keep: none, ints (integer and bool tensors, needed to replay "
                  "indexing ops), inputs (every tensor that comes into the call, and the final gradients: "
                  "enough for 'replay --check' to prove the result, for a bug report), or all (also every "
                  "op's output, so replay finds the first op that diverges)")
      ->check(CLI::IsMember({"none", "ints", "inputs", "all"}))
      ->capture_default_str();
  app->add_option("--calls", f->calls,
                  "Backward calls to record, counting from 0: all, N, A-B, every:N, or a comma list")
      ->capture_default_str();
  app->add_option("--max-calls", f->max_calls, "Stop recording after this many calls (-- COMMAND only)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("-o,--output", f->output,
                  "Trace file to write (written atomically: a new file renamed over the old, so a symlink "
                  "given here is replaced, not followed)");
  app->add_flag("--compress", f->compress,
                "Store each value as a zstd frame where that saves at least an eighth of its bytes "
                "(integer, bool, zero and bfloat16 tensors do; random float32 data barely does)");
  app->add_flag("--allow-skipped", f->allow_skipped,
                "Exit 0 even when some chosen calls could not be recorded (they are named in the trace); "
                "without it record exits 4 then, so that CI never takes a partial trace for a whole one");
  if (with_torch)
    app->add_option("--torch", f->torch,
                    "--model: the backend to run it on, by its torch version ('cautograd --version' lists "
                    "them; default: the first). -- COMMAND: the backend whose torch the program loads is "
                    "found by itself; --torch only names it for a program that does not load torch itself "
                    "(a shell script)");
  app->add_option("command", f->command,
                  "A program to record, after '--': a Python whose torch this cautograd has a backend for "
                  "(a venv with a pip torch, or /usr/bin/python3 with Debian's python3-torch), or a C++ "
                  "program linked against such a libtorch. Its exit status, stdout and stderr pass through.");
}

bool CheckRecordFlags(const RecordFlags& f, std::string* err) {
  if (f.list) return true;
  if (!f.model.empty() && !f.command.empty()) {
    *err = "give --model or a command after '--', not both";
    return false;
  }
  if (f.model.empty() && f.command.empty()) {
    *err = "nothing to record. Use --model NAME ('cautograd record --list' lists them) or -- COMMAND...";
    return false;
  }
  if (f.output.empty()) {
    *err = "no output file. Use -o FILE.";
    return false;
  }
  return true;
}

WriteOptions RecordWriteOptions(const RecordFlags& flags) {
  WriteOptions options;
  options.compress = flags.compress;
  return options;
}

int ReportSkipped(const Trace& trace, bool allow_skipped, int status) {
  if (trace.skipped.empty()) return status;
  const SkippedCall& first = trace.skipped.front();
  std::cerr << "cautograd record: " << trace.skipped.size() << " chosen backward call"
            << (trace.skipped.size() == 1 ? " was" : "s were")
            << " not recorded (the trace names each, 'cautograd show' lists them); the first: " << first.reason;
  if (status == kExitOk && !allow_skipped) {
    status = kExitSkipped;
    std::cerr << "; exit status 4 (--allow-skipped accepts a partial trace)";
  }
  std::cerr << "\n";
  return status;
}

std::string ValuesLine(const Trace& trace) {
  int64_t count = 0, bytes = 0;
  for (const Call& call : trace.calls)
    for (const Value& v : call.values) {
      ++count;
      bytes = SaturatingAdd(bytes, v.nbytes());
    }
  if (count == 0)
    return std::string("values: ") + ValuesModeName(trace.meta.values) +
           ", no tensor data (the graph, ops, shapes and dtypes only)";
  std::string line = std::string("values: ") + ValuesModeName(trace.meta.values) + ", " + std::to_string(count) +
                     (count == 1 ? " tensor, " : " tensors, ") + HumanBytes(bytes);
  if (trace.meta.values == ValuesMode::kAll || trace.meta.values == ValuesMode::kInputs)
    line += " (the model's weights, inputs and gradients: post the trace only where you would post those)";
  else if (count > 0)
    line += " (integer and bool tensors: indices, masks, targets)";
  return line;
}

}  // namespace cautograd
