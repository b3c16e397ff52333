// cautograd replay: re-execute a trace's ops offline and check the results
// against the values it recorded.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/recompile/compiled_program.h"
#include "lib/replay/isolated.h"
#include "lib/replay/report_json.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"
#include "tools/torch_flag.h"

namespace cautograd {

namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Replaces each call's ops by the program compiled autograd would compile
// for it (cautograd recompile --emit text), bound to the call. Per call, the
// recorded index of each program op, to name ops as the recording does.
bool CompileTrace(const std::string& path, Trace* trace, std::vector<std::vector<int64_t>>* recorded_ops,
                  std::string* err) {
  std::vector<CacheCall> calls;
  for (const Call& call : trace->calls) calls.push_back({path, &call});
  const CacheSimulation sim = SimulateCache(calls, DynamicMode::kAuto);
  std::vector<BoundCall> bound;
  if (!BindCalls(calls, sim, &bound, err)) return false;
  for (size_t i = 0; i < bound.size(); ++i) {
    trace->calls[i] = std::move(bound[i].call);
    recorded_ops->push_back(std::move(bound[i].recorded_ops));
  }
  return true;
}

class ReplayCommand : public Command {
 public:
  const char* name() const override { return "replay"; }
  const char* description() const override { return kReplayDescription; }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "Trace file")->required();
    AddTorchFlag(app, &torch_);
    app->add_option("--call", call_, "Replay only this call (counting from 0); default: all, in order");
    app->add_flag("--check", check_,
                  "Compare every value the trace recorded (op outputs, final gradients) with the replay; "
                  "exit 1 at the first divergence. Needs a trace recorded with --values all");
    app->add_option("--rtol", rtol_, "Relative tolerance (default: by dtype, as torch.testing)");
    app->add_option("--atol", atol_, "Absolute tolerance (default: by dtype, as torch.testing)");
    app->add_option("--seed", seed_, "Seed for inputs the trace holds no values for")->capture_default_str();
    app->add_option("--allow-namespace", namespaces_,
                    "Also replay operators of this namespace (aten and prim always are)");
    app->add_option("--max-memory", max_memory_mib_,
                    "Refuse traces whose replay needs more than this many MiB")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_flag("--compiled", compiled_,
                  "Run each call as the straight-line program compiled autograd would compile for it "
                  "(see 'cautograd recompile --emit text') instead of the recorded op stream");
    app->add_flag("--json", json_, "Print the report as JSON");
  }

  int Run() override {
    Trace trace;
    std::string err;
    if (!IsThisBackend(torch_, &err)) return Fail(name(), err, kExitBadInput);
    ReadOptions read;
    read.max_value_bytes = MaxMemoryBytes();
    if (!ReadTraceFile(path_, &trace, &err, read)) return Fail(name(), err, kExitBadInput);
    if (trace.calls.empty()) {
      std::string why = trace.skipped.empty()
                            ? "the program made no backward call that was chosen"
                            : std::to_string(trace.skipped.size()) + " chosen call" +
                                  (trace.skipped.size() == 1 ? " was" : "s were") +
                                  " skipped by the recorder; the first: " + trace.skipped.front().reason;
      return Fail(name(), path_ + ": the trace holds no recorded backward call (" + why + "): nothing to replay",
                  kExitBadInput);
    }
    // A call compiled autograd ran has its graph and key but no ops: nothing
    // ran eagerly, so there is nothing to replay.
    auto ran_compiled = [](const Call& c) { return c.compiled_autograd.ran == CompiledAutogradKey::Ran::kCompiled; };
    if (call_ >= 0 && call_ < int64_t(trace.calls.size()) && ran_compiled(trace.calls[size_t(call_)]))
      return Fail(name(),
                  path_ + ": call " + std::to_string(call_) +
                      " ran under compiled autograd: the trace holds its graph and key, not its ops; replay "
                      "an eager call, or record this step without compiled autograd",
                  kExitBadInput);
    if (call_ < 0) {
      size_t before = trace.calls.size();
      trace.calls.erase(std::remove_if(trace.calls.begin(), trace.calls.end(), ran_compiled), trace.calls.end());
      if (trace.calls.size() != before)
        std::cerr << "cautograd replay: " << (before - trace.calls.size()) << " of " << before
                  << " calls ran under compiled autograd (graph and key only, no ops): not replayed\n";
      if (trace.calls.empty() && before > 0)
        return Fail(name(), path_ + ": every call ran under compiled autograd: nothing eager to replay",
                    kExitBadInput);
    }
    std::vector<std::vector<int64_t>> recorded_ops;
    if (compiled_ && !CompileTrace(path_, &trace, &recorded_ops, &err))
      return Fail(name(), err, kExitFailure);
    ReplayOptions options;
    options.call = call_;
    options.check = check_;
    options.rtol = rtol_;
    options.atol = atol_;
    options.seed = seed_;
    options.allow_namespaces = namespaces_;
    options.max_memory = MaxMemoryBytes();
    bool tty = isatty(STDERR_FILENO) && !json_;
    auto last = std::chrono::steady_clock::now();
    if (tty) {
      options.progress = [&](int64_t done, int64_t total) {
        auto now = std::chrono::steady_clock::now();
        if (done < total && now - last < std::chrono::milliseconds(200)) return;
        last = now;
        std::cerr << "\rreplay: op " << done << "/" << total << (done == total ? "\r\033[K" : "")
                  << std::flush;
      };
    }
    ReplayReport report;
    // In a child process: a tampered trace may crash an aten kernel.
    if (!ReplayIsolated(trace, options, &report, &err)) {
      if (tty) std::cerr << "\r\033[K";
      return Fail(name(), path_ + ": " + err, kExitBadInput);
    }
    if (check_ && !report.diverged() && report.compared() == 0)
      return Fail(name(),
                  path_ + ": --check found no recorded values to compare (values=" +
                      std::string(ValuesModeName(trace.meta.values)) +
                      "); record with --values all to check a replay",
                  kExitBadInput);
    for (CallReplay& c : report.calls) {
      if (compiled_ && c.diverged && c.divergence.op >= 0)
        c.divergence.op = recorded_ops[size_t(c.index)][size_t(c.divergence.op)];
    }
    if (json_)
      PrintJson(report);
    else
      PrintText(trace, report);
    return report.diverged() ? kExitDifferences : kExitOk;
  }

 private:
  void PrintText(const Trace& trace, const ReplayReport& report) {
    int64_t ops = 0;
    double us = 0;
    for (const CallReplay& c : report.calls) {
      ops += c.ops;
      us += c.run_us;
    }
    std::cout << path_ << ": replayed " << report.calls.size() << " of " << trace.calls.size() << " call"
              << (trace.calls.size() == 1 ? "" : "s") << ", " << ops << " ops in " << Number(us / 1000)
              << " ms" << (ops ? " (" + Number(us / double(ops)) + " us/op)" : "")
              << (compiled_ ? ", as compiled autograd's programs" : "") << "\n";
    for (const CallReplay& c : report.calls) {
      std::cout << "  call " << c.index << ": " << c.ops << " ops, " << c.inputs << " inputs ("
                << c.inputs_from_values << " from recorded values, " << c.inputs_synthesized
                << " synthesized from --seed " << seed_;
      if (c.inputs_aliased) std::cout << ", " << c.inputs_aliased << " views of memory an earlier op wrote";
      std::cout << "), peak about " << HumanBytes(c.peak_bytes);
      if (report.checked) std::cout << ", " << c.compared << " values checked";
      std::cout << "\n";
    }
    if (!report.checked) {
      std::cout << "not checked: add --check to compare with the recorded values\n";
      return;
    }
    double worst_abs = 0, worst_rel = 0;
    for (const CallReplay& c : report.calls) {
      worst_abs = std::max(worst_abs, c.worst_abs);
      worst_rel = std::max(worst_rel, c.worst_rel);
      if (c.diverged) {
        std::cout << "DIVERGED at " << DivergenceText(c) << "\n";
        return;
      }
    }
    std::cout << "MATCH: " << report.compared() << " recorded values reproduced; worst abs error "
              << Number(worst_abs) << ", worst rel error " << Number(worst_rel) << "\n";
  }

  void PrintJson(const ReplayReport& report) {
    nlohmann::json out = ReportToJson(report);
    out["file"] = path_;
    out["result"] = !report.checked ? "not_checked" : report.diverged() ? "diverged" : "match";
    out["compared"] = report.compared();
    out["compiled"] = compiled_;
    for (size_t i = 0; i < report.calls.size(); ++i)
      if (report.calls[i].diverged)
        out["calls"][i]["divergence"]["message"] = DivergenceText(report.calls[i]);
    std::cout << out.dump(2) << "\n";
  }

  std::string path_;
  int64_t call_ = -1;
  bool check_ = false;
  double rtol_ = -1, atol_ = -1;
  uint64_t seed_ = 0;
  std::vector<std::string> namespaces_;
  int64_t max_memory_mib_ = 4096;

  // A cap past what 64 bits of bytes can count is no cap at all.
  int64_t MaxMemoryBytes() const {
    return max_memory_mib_ > (std::numeric_limits<int64_t>::max() >> 20) ? std::numeric_limits<int64_t>::max()
                                                                          : max_memory_mib_ << 20;
  }
  bool compiled_ = false;
  bool json_ = false;
  std::string torch_;
};

}  // namespace

std::unique_ptr<Command> MakeReplayCommand() { return std::make_unique<ReplayCommand>(); }

}  // namespace cautograd
