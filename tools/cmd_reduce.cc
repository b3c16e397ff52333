// cautograd reduce: shrinks a trace to the few ops on which a condition
// still holds (lib/reduce/reduce.h), checks that the result alone still
// shows it, optionally redacts its values, and writes it whole or not at all.
// It runs in a backend: the replay conditions replay every candidate, each
// in a child process (lib/replay/isolated.h), so a crash is an answer, not
// an end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "lib/reduce/redact.h"
#include "lib/reduce/reduce.h"
#include "lib/reduce/run_command.h"
#include "lib/replay/isolated.h"
#include "lib/replay/report_json.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"
#include "tools/record_flags.h"
#include "tools/torch_flag.h"

namespace cautograd {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// What the condition saw on one trace: where, in the original's numbering.
struct Outcome {
  bool holds = false;
  bool refused = false;  // replay refused the trace before running an op
  int64_t call = -1, op = -1, tensor = -1;  // original positions and ids; -1: none
  ReplayFailure::Kind kind = ReplayFailure::Kind::kRefused;
  int signal = 0;
  double max_abs = 0, max_rel = 0;
  std::string detail;
  std::string text;  // in words, in the candidate's own numbering
};

class ReduceCommand : public Command {
 public:
  const char* name() const override { return "reduce"; }
  const char* description() const override { return kReduceDescription; }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "The trace to reduce (recorded with --values all: cut points take recorded values)");
    AddTorchFlag(app, &torch_);
    app->add_option("-o,--output", output_, "The reduced trace to write (whole, or not at all)")->required();
    app->add_option("--until", until_,
                    "The condition to keep true: diverges (replay --check diverges at the same op), crashes "
                    "(replay fails at the same op: a signal, or an error the op raises), differs-from OTHER "
                    "(the ops, run on this trace's inputs, differ from what OTHER recorded for them), or "
                    "'CMD {}' (a shell command, {} replaced by a candidate's path, exits 0)")
        ->required()
        ->expected(1, 2);
    app->add_option("--call", call_, "Reduce only this call (counting from 0)")->check(CLI::NonNegativeNumber);
    app->add_flag("--redact", redact_,
                  "Replace floating-point values by seeded random ones wherever the condition still holds "
                  "(tested); integer and bool tensors are kept");
    app->add_option("--seed", seed_, "Seed for --redact's values and for inputs the trace holds no values for")
        ->capture_default_str();
    app->add_option("--rtol", rtol_, "Relative tolerance for diverges and differs-from (default: by dtype)");
    app->add_option("--atol", atol_, "Absolute tolerance for diverges and differs-from (default: by dtype)");
    app->add_option("--allow-namespace", namespaces_, "Also replay operators of this namespace (as replay)");
    app->add_option("--max-memory", max_memory_mib_, "Refuse traces whose replay needs more than this many MiB")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_option("--timeout", timeout_s_, "For 'CMD {}': seconds one run may take before it is killed")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  }

  int Run() override {
    std::string err;
    if (!IsThisBackend(torch_, &err)) return Fail(name(), err, kExitBadInput);
    if (int status = ParseUntil(); status != kExitOk) return status;
    ReadOptions read;
    read.max_value_bytes = MaxMemoryBytes();
    if (!ReadTraceFile(path_, &trace_, &err, read)) return Fail(name(), err, kExitBadInput);
    if (trace_.calls.empty())
      return Fail(name(), path_ + ": the trace holds no recorded backward call: nothing to reduce", kExitBadInput);
    if (call_ >= int64_t(trace_.calls.size()))
      return Fail(name(),
                  path_ + ": no call " + std::to_string(call_) + "; it has " + std::to_string(trace_.calls.size()) +
                      " (numbered from 0)",
                  kExitBadInput);
    if (kind_ == Until::kDiffersFrom) {
      Trace other;
      if (!ReadTraceFile(other_path_, &other, &err, read)) return Fail(name(), err, kExitBadInput);
      int64_t replaced = 0;
      if (!ExpectFrom(other, &trace_, &replaced, &err))
        return Fail(name(), other_path_ + ": " + err, kExitBadInput);
      if (replaced == 0)
        return Fail(name(),
                    other_path_ + ": holds no recorded outputs of the same ops to compare with (record both with "
                                  "--values all)",
                    kExitBadInput);
      std::cerr << "cautograd reduce: " << replaced << " recorded values of " << path_ << " compared with "
                << other_path_ << "'s\n";
    }
    tty_ = isatty(STDERR_FILENO);
    start_ = Clock::now();

    // The condition must hold on the trace as it is, before any work.
    Outcome original;
    if (int status = CheckOriginal(&original); status != kExitOk) return status;
    std::cerr << "cautograd reduce: " << path_ << ": " << original.text << "\n";
    target_ = original;

    ReduceOptions options;
    if (kind_ != Until::kCommand) {
      options.target_call = original.call;
      options.target_op = original.op;
    } else if (call_ >= 0) {
      options.target_call = call_;
    }
    if (tty_) options.progress = [&](int64_t tried, int64_t ops) { Progress(tried, ops); };
    Candidate result;
    ReduceStats stats;
    Condition holds = [&](const Candidate& c) { return Matches(Evaluate(c.trace, &c)); };
    if (!Reduce(trace_, options, holds, &result, &stats, &err)) return Fail(name(), path_ + ": " + err, kExitBadInput);
    if (tty_) std::cerr << "\r\033[K";
    const double reduce_s = Seconds(start_);

    RedactReport redacted;
    if (redact_) {
      auto same = [&](const Trace& t) {
        const Outcome o = Evaluate(t, &result);
        return Matches(o) && Same(o, target_);
      };
      Redact(&result.trace, seed_, same, &redacted);
    }

    // The result, as written, read back and tried once more on its own.
    WriteOptions write;
    std::string bytes;
    if (!SerializeTraceArchive(result.trace, write, &bytes, &err)) return Fail(name(), err, kExitFailure);
    Trace reread;
    if (!ParseTraceBytes(bytes, output_, &reread, &err))
      return Fail(name(), "the reduced trace does not read back (" + err + "); nothing written", kExitFailure);
    const Outcome check = Evaluate(reread, &result, bytes);
    if (!Matches(check))
      return Fail(name(),
                  "the reduced trace, read back, no longer shows the condition (" + check.text +
                      "); nothing written. Please report this with the trace",
                  kExitFailure);
    if (!WriteFileAtomic(output_, bytes, &err)) return Fail(name(), err, kExitFailure);
    Summary(result, stats, reduce_s, check, redacted);
    return kExitOk;
  }

 private:
  enum class Until { kDiverges, kCrashes, kDiffersFrom, kCommand };

  int ParseUntil() {
    // `--until` takes one or two words: a second that is not differs-from's
    // trace is the FILE that came after it.
    if (until_.size() == 2 && until_[0] != "differs-from") {
      if (!path_.empty())
        return Fail(name(), "--until takes one condition; quote a command: --until 'CMD {}'", kExitBadInput);
      path_ = until_[1];
      until_.pop_back();
    }
    if (path_.empty()) return Fail(name(), "FILE is required: the trace to reduce", kExitBadInput);
    const std::string& u = until_[0];
    if (u == "diverges") {
      kind_ = Until::kDiverges;
    } else if (u == "crashes") {
      kind_ = Until::kCrashes;
    } else if (u == "differs-from" || u.rfind("differs-from=", 0) == 0) {
      kind_ = Until::kDiffersFrom;
      other_path_ = u == "differs-from" ? (until_.size() == 2 ? until_[1] : "") : u.substr(13);
      if (other_path_.empty())
        return Fail(name(), "differs-from needs the other trace: --until differs-from OTHER", kExitBadInput);
    } else if (u.find("{}") != std::string::npos) {
      kind_ = Until::kCommand;
      command_ = u;
    } else {
      return Fail(name(),
                  "unknown --until '" + u +
                      "': use diverges, crashes, differs-from OTHER, or a command with {} for the candidate's path",
                  kExitBadInput);
    }
    return kExitOk;
  }

  ReplayOptions Options(bool check) const {
    ReplayOptions o;
    o.check = check;
    o.rtol = rtol_;
    o.atol = atol_;
    o.seed = seed_;
    o.allow_namespaces = namespaces_;
    o.max_memory = MaxMemoryBytes();
    o.recorded_with = trace_.meta.libtorch_version;
    return o;
  }

  static int64_t Map(const std::vector<int64_t>* origin, int64_t i) {
    if (i < 0 || !origin) return i;
    return i < int64_t(origin->size()) ? (*origin)[size_t(i)] : -1;
  }

  // Runs the condition on `t`: the original (map null) or a candidate,
  // whose maps turn what replay names back into the original's numbering.
  // `bytes`, when given, is `t` as a file (for a command).
  Outcome Evaluate(const Trace& t, const Candidate* map, const std::string& bytes = "") {
    Outcome o;
    if (kind_ == Until::kCommand) return RunCommand(t, bytes);
    const bool check = kind_ != Until::kCrashes;
    for (const Call& call : t.calls) {
      if (call.compiled_autograd.ran == CompiledAutogradKey::Ran::kCompiled) continue;  // no ops to replay
      if (!map && call_ >= 0 && call.index != call_) continue;
      ReplayOptions options = Options(check);
      options.call = call.index;
      ReplayReport report;
      ReplayFailure failure;
      std::string err;
      const size_t c = size_t(call.index);
      const int64_t original_call = map ? Map(&map->calls, call.index) : call.index;
      const std::vector<int64_t>* ops = map ? &map->ops[c] : nullptr;
      const std::vector<int64_t>* tensors = map ? &map->tensors[c] : nullptr;
      if (!ReplayIsolated(t, options, &report, &err, &failure)) {
        o.text = err;
        o.kind = failure.kind;
        o.signal = failure.signal;
        o.refused = failure.kind == ReplayFailure::Kind::kRefused;
        if (kind_ == Until::kCrashes && failure.kind != ReplayFailure::Kind::kRefused && failure.op >= 0) {
          o.holds = true;
          o.call = original_call;
          o.op = Map(ops, failure.op);
        }
        return o;  // a replay that stops says nothing of the calls after
      }
      if (check && report.diverged()) {
        const CallReplay& r = report.calls.back();
        o.holds = true;
        o.call = original_call;
        o.op = Map(ops, r.divergence.op);
        o.tensor = Map(tensors, r.divergence.tensor);
        o.max_abs = r.divergence.max_abs;
        o.max_rel = r.divergence.max_rel;
        o.detail = r.divergence.detail;
        o.text = "DIVERGED at " + DivergenceText(r);
        if (kind_ == Until::kDiffersFrom) o.text = "differs from " + other_path_ + " at " + DivergenceText(r);
        return o;
      }
      if (check && report.compared() == 0 && !map && o.text.empty())
        o.text = "--check found no recorded values to compare (record with --values all)";
    }
    if (o.text.empty())
      o.text = kind_ == Until::kCrashes ? "replay runs every op without failing"
                                        : "replay --check matches every recorded value";
    return o;
  }

  Outcome RunCommand(const Trace& t, const std::string& bytes) {
    Outcome o;
    std::string err, path = path_;
    if (&t != &trace_) {
      if (dir_.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/cautograd-reduce-XXXXXX";
        if (!mkdtemp(&pattern[0])) {
          o.text = "cannot make a temporary directory for the candidates";
          return o;
        }
        dir_ = pattern;
      }
      path = dir_ + "/candidate.cag";
      std::string data = bytes;
      if (data.empty() && !SerializeTraceArchive(t, WriteOptions(), &data, &err)) {
        o.text = err;
        return o;
      }
      if (!WriteFileAtomic(path, data, &err, Durability::kCrashSafe)) {
        o.text = err;
        return o;
      }
    }
    const CommandResult r = RunShell(SubstitutePath(command_, path), timeout_s_, "", &err);
    if (!r.ran) {
      o.text = err;
      return o;
    }
    o.holds = r.status == 0 && !r.timed_out;
    o.text = r.timed_out ? "the command ran past --timeout " + Fixed(timeout_s_, 0) + " s"
                         : "the command exits " + std::to_string(r.status);
    return o;
  }

  // Whether a candidate shows the problem the original did: the same op
  // diverging on the same tensor, or failing; for a command, its say.
  bool Matches(const Outcome& o) const {
    if (!o.holds) return false;
    if (kind_ == Until::kCommand) return true;
    return o.call == target_.call && o.op == target_.op && (kind_ == Until::kCrashes || o.tensor == target_.tensor);
  }

  // The same problem as the original's: for redaction, where a changed
  // value must leave what the condition saw as it was.
  static bool Same(const Outcome& a, const Outcome& b) {
    return a.call == b.call && a.op == b.op && a.tensor == b.tensor && a.kind == b.kind && a.signal == b.signal &&
           a.max_abs == b.max_abs && a.max_rel == b.max_rel && a.detail == b.detail;
  }

  int CheckOriginal(Outcome* original) {
    *original = Evaluate(trace_, nullptr);
    if (original->holds) return kExitOk;
    // A trace replay will not run is refused in replay's words.
    if (original->refused) return Fail(name(), path_ + ": " + original->text, kExitBadInput);
    const char* want = kind_ == Until::kDiverges      ? "--until diverges needs a replay that diverges"
                       : kind_ == Until::kCrashes     ? "--until crashes needs a replay that fails at an op"
                       : kind_ == Until::kDiffersFrom ? "--until differs-from needs ops that differ"
                                                      : "--until 'CMD {}' needs the command to exit 0 on the trace";
    return Fail(name(), path_ + ": the condition does not hold on the trace itself (" + original->text + "); " + want,
                kExitBadInput);
  }

  void Progress(int64_t tried, int64_t ops) {
    std::cerr << "\rreduce: " << tried << " candidates tried, " << ops << " ops left, " << Fixed(Seconds(start_), 1)
              << " s\033[K" << std::flush;
  }

  void Summary(const Candidate& result, const ReduceStats& stats, double seconds, const Outcome& check,
               const RedactReport& redacted) {
    std::cout << "wrote " << output_ << ": " << result.num_ops() << (result.num_ops() == 1 ? " op" : " ops")
              << " of " << stats.ops_before << ", in " << result.calls.size()
              << (result.calls.size() == 1 ? " call" : " calls") << "; " << stats.tried << " candidates tried in "
              << Fixed(seconds, 1) << " s\n";
    for (size_t c = 0; c < result.calls.size(); ++c) {
      const Call& original = trace_.calls[size_t(result.calls[c])];
      std::cout << "  call " << c << " (call " << original.index << " of " << path_ << "):";
      const size_t shown = std::min<size_t>(result.ops[c].size(), 12);
      for (size_t i = 0; i < shown; ++i) {
        const Op& op = original.ops[size_t(result.ops[c][i])];
        std::cout << (i ? "," : "") << " op " << op.index << " " << OpLabel(op);
      }
      if (result.ops[c].size() > shown) std::cout << ", and " << result.ops[c].size() - shown << " more";
      std::cout << "\n";
    }
    std::cout << "it replays on its own: " << check.text << "\n";
    if (!redact_) std::cout << ValuesLine(result.trace) << "\n";
    if (kind_ == Until::kDiffersFrom)
      std::cout << "its recorded outputs are " << other_path_ << "'s, its inputs " << path_ << "'s\n";
    if (redact_) {
      std::cout << "values: " << redacted.replaced + redacted.kept + redacted.integral << " tensors, "
                << HumanBytes(redacted.kept_bytes + redacted.integral_bytes) << " as recorded (" << redacted.kept
                << " floating-point, " << redacted.integral << " integer or bool), "
                << HumanBytes(redacted.replaced_bytes) << " random\n";
      std::cout << "redacted: " << redacted.replaced << " of " << redacted.replaced + redacted.kept
                << " floating-point values replaced by random ones (--seed " << seed_ << ", "
                << HumanBytes(redacted.replaced_bytes) << "; " << redacted.tests << " tests)";
      if (redacted.integral) std::cout << "; " << redacted.integral << " integer and bool values kept as recorded";
      std::cout << "\n";
      for (const std::string& what : redacted.kept_what)
        std::cout << "  kept as recorded, the condition needs it: " << what << "\n";
    }
    std::cout << "next: cautograd repro " << output_ << " --emit python -o repro.py\n";
    if (!dir_.empty()) {
      std::remove((dir_ + "/candidate.cag").c_str());
      rmdir(dir_.c_str());
    }
  }

  int64_t MaxMemoryBytes() const {
    return max_memory_mib_ > (std::numeric_limits<int64_t>::max() >> 20) ? std::numeric_limits<int64_t>::max()
                                                                          : max_memory_mib_ << 20;
  }

  std::string path_, output_, torch_, other_path_, command_;
  std::vector<std::string> until_;
  Until kind_ = Until::kDiverges;
  int64_t call_ = -1;
  bool redact_ = false;
  uint64_t seed_ = 0;
  double rtol_ = -1, atol_ = -1;
  std::vector<std::string> namespaces_;
  int64_t max_memory_mib_ = 4096;
  double timeout_s_ = 300;
  bool tty_ = false;
  Clock::time_point start_;
  Trace trace_;
  Outcome target_;
  std::string dir_;  // where a command's candidates are written
};

}  // namespace

std::unique_ptr<Command> MakeReduceCommand() { return std::make_unique<ReduceCommand>(); }

}  // namespace cautograd
