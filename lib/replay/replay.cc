#include "lib/replay/replay.h"

#include <string>

#include "lib/replay/program.h"

namespace cautograd {

using replay_detail::Compiler;
using replay_detail::Program;
using replay_detail::Runner;

bool ReplayReport::diverged() const {
  for (const CallReplay& c : calls)
    if (c.diverged) return true;
  return false;
}

int64_t ReplayReport::compared() const {
  int64_t n = 0;
  for (const CallReplay& c : calls) n += c.compared;
  return n;
}

namespace {

// Compiles every selected call before running any: a refusal comes before
// any work.
bool CompileAll(const Trace& trace, const ReplayOptions& options, std::vector<Program>* programs, int64_t* total,
                std::string* err) {
  if (options.call >= int64_t(trace.calls.size())) {
    *err = "no call " + std::to_string(options.call) + ": the trace has " +
           std::to_string(trace.calls.size()) + " (numbered from 0)";
    return false;
  }
  ReplayOptions compile_options = options;
  if (compile_options.recorded_with.empty()) compile_options.recorded_with = trace.meta.libtorch_version;
  for (const Call& call : trace.calls) {
    if (options.call >= 0 && call.index != options.call) continue;
    Program program;
    try {
      if (!Compiler(call, compile_options, err).Compile(&program)) return false;
    } catch (const std::exception& e) {
      *err = "call " + std::to_string(call.index) + ": " +
             std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
      return false;
    }
    *total += int64_t(program.ops.size());
    programs->push_back(std::move(program));
  }
  return true;
}

}  // namespace

bool CheckReplayable(const Trace& trace, const ReplayOptions& options, std::string* err) {
  std::vector<Program> programs;
  int64_t total = 0;
  return CompileAll(trace, options, &programs, &total, err);
}

bool Replay(const Trace& trace, const ReplayOptions& options, ReplayReport* report, std::string* err) {
  *report = ReplayReport();
  report->checked = options.check;
  std::vector<Program> programs;
  int64_t total = 0;
  if (!CompileAll(trace, options, &programs, &total, err)) return false;
  int64_t done = 0;
  for (const Program& program : programs) {
    CallReplay result;
    result.index = program.call->index;
    result.peak_bytes = program.peak_bytes;
    if (!Runner(program, options, &result, err).Run(&done, total)) return false;
    report->calls.push_back(std::move(result));
    if (report->calls.back().diverged) break;  // stop at the first divergence
  }
  if (options.progress) options.progress(done, total);
  return true;
}

}  // namespace cautograd
