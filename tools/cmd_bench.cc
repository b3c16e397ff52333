// cautograd bench: what eager backward costs beyond its kernels, and what a
// compiled straight-line program saves (docs/performance.md).
//
//   bench --model NAME    eager backward, replay of its recorded ops, the
//                         compiled program and the kernels alone, in one
//                         process on one graph, after checking the gradients
//   bench FILE            replay and compiled programs of a trace, per node
//                         and op, and how fast the trace loads
//   bench --record-overhead --model NAME
//                         a training step without and with the recorder
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/models/models.h"
#include "lib/recompile/compiled_program.h"
#include "lib/recorder/recorder.h"
#include "lib/replay/isolated.h"
#include "lib/replay/prepared.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"
#include "tools/torch_flag.h"

namespace cautograd {

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Median and the 10th and 90th percentiles of a set of timings.
struct Spread {
  double median = 0, p10 = 0, p90 = 0;
};

Spread Summarize(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[size_t(q * double(v.size() - 1) + 0.5)]; };
  s.median = at(0.5);
  s.p10 = at(0.1);
  s.p90 = at(0.9);
  return s;
}

std::string Us(double us) {
  char buf[32];
  if (us >= 10000)
    std::snprintf(buf, sizeof buf, "%.1f ms", us / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.1f us", us);
  return buf;
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

nlohmann::json SpreadJson(const Spread& s) {
  return {{"median_us", s.median}, {"p10_us", s.p10}, {"p90_us", s.p90}};
}

// One timed thing: a row of the table.
struct Row {
  std::string name;
  std::vector<double> us;
  int64_t ops = -1;  // -1: not a program
  Spread spread() const { return Summarize(us); }
};

void PrintTable(const std::vector<Row>& rows, const Row* base) {
  std::printf("  %-18s %11s %25s %9s %6s\n", "", "median", "p10-p90", base ? "/ eager" : "", "ops");
  for (const Row& r : rows) {
    Spread s = r.spread();
    std::string ratio = base ? Fixed(s.median / base->spread().median, 2) : "";
    std::printf("  %-18s %11s %25s %9s %6s\n", r.name.c_str(), Us(s.median).c_str(),
                (Us(s.p10) + " - " + Us(s.p90)).c_str(), ratio.c_str(),
                r.ops >= 0 ? std::to_string(r.ops).c_str() : "");
  }
}

nlohmann::json RowsJson(const std::vector<Row>& rows, const Row* base) {
  nlohmann::json out = nlohmann::json::object();
  for (const Row& r : rows) {
    nlohmann::json j = SpreadJson(r.spread());
    if (r.ops >= 0) j["ops"] = r.ops;
    if (base) j["ratio_to_eager"] = r.spread().median / base->spread().median;
    out[r.name] = j;
  }
  return out;
}

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// A progress line on stderr, only on a terminal.
class Progress {
 public:
  explicit Progress(bool on) : on_(on) {}
  ~Progress() { Clear(); }
  void Show(const std::string& what, int64_t done, int64_t total) {
    if (!on_) return;
    auto now = Clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::cerr << "\rbench: " << what << " " << done << "/" << total << "\033[K" << std::flush;
    shown_ = true;
  }
  void Clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  bool on_;
  bool shown_ = false;
  Clock::time_point last_;
};

// The first step's graph, held while bench times it.
struct ModelBench {
  std::vector<Row> rows;  // eager, replay, compiled, kernels
  int64_t leaves = 0;
  double worst_abs = 0;
  std::string mismatch;  // gradients differ: no timings
  std::string error;
};

// Whether the final leaf grads of `prepared` match `want` (by leaf name),
// with replay's default tolerances. Empty when they do, else what differs.
std::string CompareGrads(const std::string& what, const Call& call, const PreparedCall& prepared,
                         const NamedTensors& want, int64_t* compared, double* worst_abs) {
  *compared = 0;
  for (const auto& [name, grad] : want) {
    const Node* leaf = nullptr;
    for (const Node& n : call.nodes)
      if (n.leaf && n.leaf->name == name) leaf = &n;
    if (!leaf || leaf->leaf->grad_after < 0) return what + ": no final gradient for leaf '" + name + "'";
    at::Tensor got = prepared.Value(leaf->leaf->grad_after);
    if (!got.defined()) return what + ": leaf '" + name + "' has no gradient after the run";
    if (!got.sizes().equals(grad.sizes()))
      return what + ": leaf '" + name + "' gradient has shape " + c10::str(got.sizes()) + ", eager " +
             c10::str(grad.sizes());
    Tolerance tol = DefaultTolerance(leaf->leaf->dtype);
    at::Tensor g = got.to(at::kDouble), w = grad.to(at::kDouble);
    double abs = g.numel() ? (g - w).abs().max().item<double>() : 0;
    *worst_abs = std::max(*worst_abs, abs);
    if (!at::allclose(g, w, tol.rtol, tol.atol))
      return what + ": leaf '" + name + "' gradient differs from eager by up to " + Fixed(abs, 9);
    ++*compared;
  }
  return "";
}

class BenchCommand : public Command {
 public:
  const char* name() const override { return "bench"; }
  const char* description() const override { return kBenchDescription; }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "Trace file: time its replay and compiled programs");
    AddTorchFlag(app, &torch_);
    app->add_option("--model", model_, "Built-in model: time eager backward against replay and compiled");
    app->add_option("--batch", batch_, "Batch size (default: the model's)")->check(CLI::Range(1, 4096));
    app->add_option("--seed", seed_, "Seed of the model's weights and inputs")->capture_default_str();
    warmup_option_ =
        app->add_option("--warmup", warmup_, "Untimed iterations first (--record-overhead: runs; default 1)")
            ->capture_default_str()
            ->check(CLI::Range(0, 100000));
    iters_option_ =
        app->add_option("--iters", iters_, "Timed iterations (--record-overhead: runs; default 5)")
            ->capture_default_str()
            ->check(CLI::Range(1, 1000000));
    app->add_option("--top", top_, "bench FILE: how many nodes and ops to list")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000));
    app->add_flag("--record-overhead", record_overhead_,
                  "With --model: step time without the recorder, with it idle, with a bare RecordFunction "
                  "callback during backward (the floor under recording), and recording each --values");
    app->add_option("--steps", steps_, "--record-overhead: steps per run")
        ->capture_default_str()
        ->check(CLI::Range(2, 10000));
    app->add_flag("--json", json_, "Print the figures as JSON");
  }

  int Run() override {
    {
      std::string err;
      if (!IsThisBackend(torch_, &err)) return Fail(name(), err, kExitBadInput);
    }
    if (path_.empty() == model_.empty())
      return Fail(name(),
                  "give a trace FILE or --model NAME, not both or neither. Run 'cautograd bench --help'",
                  kExitBadInput);
    if (!model_.empty() && !FindModel(model_))
      return Fail(name(), "unknown model '" + model_ + "'; `cautograd record --list` lists the models",
                  kExitBadInput);
    if (record_overhead_ && model_.empty())
      return Fail(name(), "--record-overhead needs --model NAME", kExitBadInput);
    if (!path_.empty() && batch_ != 0)
      return Fail(name(), "--batch goes with --model, not a trace FILE", kExitBadInput);
    progress_ = std::make_unique<Progress>(isatty(STDERR_FILENO) && !json_);
    if (record_overhead_) {
      if (!warmup_option_->count()) warmup_ = 1;
      if (!iters_option_->count()) iters_ = 5;
      return RunRecordOverhead();
    }
    if (!model_.empty()) return RunModelBench();
    return RunFileBench();
  }

 private:
  // --- bench --model -------------------------------------------------------

  int RunModelBench() {
    ModelBench bench;
    NamedTensors params;
    bool benched = false;
    // Finished after the first backward: only that call is needed.
    RecorderOptions ro;
    ro.values = ValuesMode::kAll;
    Recorder recorder(ro);
    if (!recorder.active()) return Fail(name(), "another recorder is active in this process", kExitFailure);
    ModelOptions options;
    options.steps = 1;
    options.batch = batch_;
    options.seed = seed_;
    options.run_backward = [&](const at::Tensor& loss) {
      if (!benched) TimeBackward(loss, params, &recorder, &bench);
      benched = true;
      loss.backward();
    };
    std::string err;
    auto observe = [&](const NamedTensors& p) {
      params = p;
      recorder.NameParameters(p);
    };
    if (!RunModel(model_, options, observe, nullptr, &err)) return Fail(name(), err, kExitFailure);
    progress_->Clear();
    if (!bench.error.empty()) return Fail(name(), bench.error, kExitFailure);
    if (!bench.mismatch.empty())
      return Fail(name(), "gradients differ from eager backward, so no timings: " + bench.mismatch,
                  kExitDifferences);
    const Row& eager = bench.rows[0];
    if (json_) {
      nlohmann::json out = Header("model");
      out["model"] = model_;
      out["batch"] = batch_ ? batch_ : FindModel(model_)->default_batch;
      out["check"] = {{"passed", true}, {"leaves", bench.leaves}, {"worst_abs", bench.worst_abs}};
      out["timings"] = RowsJson(bench.rows, &eager);
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::printf("bench %s (batch %d, seed %llu): backward, %d iterations after %d warmup, %d threads\n",
                model_.c_str(), batch_ ? batch_ : FindModel(model_)->default_batch,
                static_cast<unsigned long long>(seed_), iters_, warmup_, at::get_num_threads());
    std::printf("checked: replay and compiled give eager's gradients for %lld leaves (worst abs error %g)\n",
                static_cast<long long>(bench.leaves), bench.worst_abs);
    PrintTable(bench.rows, &eager);
    std::printf(
        "kernels: each compiled op's boxed call to its CPU kernel alone, summed (no engine, no "
        "stack building)\n");
    return kExitOk;
  }

  void TimeBackward(const at::Tensor& loss, const NamedTensors& params, Recorder* recorder,
                    ModelBench* bench) {
    // The grads as this step found them; every timed backward starts there.
    std::vector<at::Tensor> before;
    for (const auto& [n, p] : params) before.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
    auto reset = [&] {
      for (size_t i = 0; i < params.size(); ++i)
        params[i].second.mutable_grad() = before[i].defined() ? before[i].clone() : at::Tensor();
    };
    reset();
    loss.backward({}, /*retain_graph=*/true);
    Trace trace = recorder->Finish();
    if (!recorder->error().empty()) {
      bench->error = "recording failed: " + recorder->error();
      return;
    }
    if (trace.calls.empty()) {
      bench->error = "the recorder saw no backward call";
      return;
    }
    // The last call is this backward (doublegrad's forward makes one too).
    const Call& call = trace.calls.back();
    reset();
    loss.backward({}, true);
    NamedTensors eager;
    for (const auto& [n, p] : params)
      if (p.grad().defined()) eager.emplace_back(n, p.grad().clone());
    std::vector<CacheCall> calls = {{"", &call}};
    const CacheSimulation sim = SimulateCache(calls, DynamicMode::kAuto);
    std::vector<BoundCall> bound;
    std::string err;
    if (!BindCalls(calls, sim, &bound, &err)) {
      bench->error = "compiling the recorded call: " + err;
      return;
    }
    PreparedCall replay, compiled;
    ReplayOptions ro;
    if (!replay.Prepare(call, ro, &err) || !compiled.Prepare(bound[0].call, ro, &err)) {
      bench->error = "preparing: " + err;
      return;
    }
    double us = 0;
    std::vector<double> op_us;
    int64_t compared = 0;
    if (!replay.Run(&us, &err) || !compiled.Run(&us, &err)) {
      bench->error = err;
      return;
    }
    bench->mismatch = CompareGrads("replay", call, replay, eager, &compared, &bench->worst_abs);
    if (bench->mismatch.empty())
      bench->mismatch =
          CompareGrads("compiled", bound[0].call, compiled, eager, &bench->leaves, &bench->worst_abs);
    if (!bench->mismatch.empty()) return;
    // Interleaved, so drift in the machine's speed hits all four alike.
    bench->rows = {{"eager backward", {}, -1},
                   {"replay", {}, replay.ops()},
                   {"compiled", {}, compiled.ops()},
                   {"kernels (floor)", {}, compiled.ops()}};
    for (int i = 0; i < warmup_ + iters_; ++i) {
      progress_->Show(i < warmup_ ? "warmup" : "iteration", i < warmup_ ? i : i - warmup_,
                      i < warmup_ ? warmup_ : iters_);
      reset();
      auto start = Clock::now();
      loss.backward({}, true);
      double eager_us = Since(start);
      double replay_us = 0, compiled_us = 0;
      if (!replay.Run(&replay_us, &err) || !compiled.Run(&compiled_us, &err) ||
          !compiled.RunKernels(&op_us, &err)) {
        bench->error = err;
        return;
      }
      if (i < warmup_) continue;
      bench->rows[0].us.push_back(eager_us);
      bench->rows[1].us.push_back(replay_us);
      bench->rows[2].us.push_back(compiled_us);
      bench->rows[3].us.push_back(Sum(op_us));
    }
    reset();
  }

  // --- bench FILE ------------------------------------------------------------

  int RunFileBench() {
    struct stat st;
    if (stat(path_.c_str(), &st) != 0) return Fail(name(), "cannot open '" + path_ + "'", kExitBadInput);
    Trace trace;
    std::string err;
    std::vector<double> load_us;
    for (int i = 0; i < 3; ++i) {
      auto start = Clock::now();
      if (!ReadTraceFile(path_, &trace, &err)) return Fail(name(), err, kExitBadInput);
      load_us.push_back(Since(start));
      if (Sum(load_us) > 2e6) break;
    }
    const double load = Summarize(load_us).median;
    const double mb_per_s = double(st.st_size) / 1e6 / (load / 1e6);
    // Once in a child process, checked where the trace holds values: a
    // tampered trace may crash a kernel, and timings of a wrong replay mean nothing.
    ReplayOptions options;
    options.check = trace.meta.values == ValuesMode::kAll;
    ReplayReport report;
    if (!ReplayIsolated(trace, options, &report, &err))
      return Fail(name(), path_ + ": " + err, kExitBadInput);
    if (report.diverged())
      return Fail(name(),
                  path_ +
                      ": replay diverges from the recording ('cautograd replay --check' says where); "
                      "no timings",
                  kExitDifferences);
    options.check = false;
    std::vector<CacheCall> calls;
    for (const Call& call : trace.calls) calls.push_back({path_, &call});
    const CacheSimulation sim = SimulateCache(calls, DynamicMode::kAuto);
    std::vector<BoundCall> bound;
    if (!BindCalls(calls, sim, &bound, &err)) return Fail(name(), path_ + ": " + err, kExitFailure);
    std::vector<PreparedCall> replays(trace.calls.size()), compiled(trace.calls.size());
    for (size_t c = 0; c < trace.calls.size(); ++c) {
      if (!replays[c].Prepare(trace.calls[c], options, &err) ||
          !compiled[c].Prepare(bound[c].call, options, &err))
        return Fail(name(), path_ + ": " + err, kExitBadInput);
    }
    int64_t replay_ops = 0, compiled_ops = 0;
    double recorded = 0;
    for (size_t c = 0; c < trace.calls.size(); ++c) {
      replay_ops += replays[c].ops();
      compiled_ops += compiled[c].ops();
      recorded += trace.calls[c].duration_us;
    }
    std::vector<Row> rows = {{"replay", {}, replay_ops},
                             {"replay kernels", {}, replay_ops},
                             {"compiled", {}, compiled_ops},
                             {"compiled kernels", {}, compiled_ops}};
    std::vector<std::vector<std::vector<double>>> per_op(trace.calls.size());  // call, op, iteration
    for (size_t c = 0; c < trace.calls.size(); ++c) per_op[c].resize(size_t(replays[c].ops()));
    std::vector<double> op_us;
    for (int i = 0; i < warmup_ + iters_; ++i) {
      progress_->Show(i < warmup_ ? "warmup" : "iteration", i < warmup_ ? i : i - warmup_,
                      i < warmup_ ? warmup_ : iters_);
      double t[4] = {0, 0, 0, 0};
      for (size_t c = 0; c < trace.calls.size(); ++c) {
        double us = 0;
        if (!replays[c].Run(&us, &err)) return Fail(name(), path_ + ": " + err, kExitFailure);
        t[0] += us;
        if (!replays[c].RunKernels(&op_us, &err)) return Fail(name(), path_ + ": " + err, kExitFailure);
        t[1] += Sum(op_us);
        if (i >= warmup_)
          for (size_t k = 0; k < op_us.size(); ++k) per_op[c][k].push_back(op_us[k]);
        if (!compiled[c].Run(&us, &err)) return Fail(name(), path_ + ": " + err, kExitFailure);
        t[2] += us;
        if (!compiled[c].RunKernels(&op_us, &err)) return Fail(name(), path_ + ": " + err, kExitFailure);
        t[3] += Sum(op_us);
      }
      if (i < warmup_) continue;
      for (int k = 0; k < 4; ++k) rows[size_t(k)].us.push_back(t[k]);
    }
    progress_->Clear();

    // The most expensive nodes and ops, by median kernel time per op.
    struct Cost {
      std::string what;
      double us = 0;
      int64_t count = 0;
    };
    std::map<std::string, Cost> nodes, ops;
    for (size_t c = 0; c < trace.calls.size(); ++c) {
      const Call& call = trace.calls[c];
      for (int64_t k = 0; k < replays[c].ops(); ++k) {
        const Op& op = replays[c].op(k);
        double us = Summarize(per_op[c][size_t(k)]).median;
        std::string node = op.node < 0
                               ? "call " + std::to_string(call.index) + " (engine, between nodes)"
                               : "call " + std::to_string(call.index) + " node " + std::to_string(op.node) +
                                     " (" + call.nodes[size_t(op.node)].type + ")";
        Cost& n = nodes[node];
        n.what = node;
        n.us += us;
        ++n.count;
        Cost& o = ops[OpLabel(op)];
        o.what = OpLabel(op);
        o.us += us;
        ++o.count;
      }
    }
    auto top = [&](const std::map<std::string, Cost>& all) {
      std::vector<Cost> v;
      for (const auto& [k, cost] : all) v.push_back(cost);
      std::sort(v.begin(), v.end(), [](const Cost& a, const Cost& b) { return a.us > b.us; });
      if (int(v.size()) > top_) v.resize(size_t(top_));
      return v;
    };
    const double overhead_per_op =
        replay_ops ? (rows[0].spread().median - rows[1].spread().median) / double(replay_ops) : 0;

    if (json_) {
      nlohmann::json out = Header("file");
      out["file"] = path_;
      out["calls"] = trace.calls.size();
      out["load"] = {{"bytes", int64_t(st.st_size)}, {"us", load}, {"mb_per_s", mb_per_s}};
      out["checked"] = report.checked;
      out["timings"] = RowsJson(rows, nullptr);
      out["recorded_backward_us"] = recorded;
      if (recorded > 0) {
        out["ratios_to_recorded"] = {{"replay", rows[0].spread().median / recorded},
                                     {"compiled", rows[2].spread().median / recorded}};
      }
      out["interpreter_overhead_us_per_op"] = overhead_per_op;
      out["compiled_to_replay"] = rows[2].spread().median / rows[0].spread().median;
      auto costs = [](const std::vector<Cost>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (const Cost& c : v) a.push_back({{"what", c.what}, {"us", c.us}, {"ops", c.count}});
        return a;
      };
      out["top_nodes"] = costs(top(nodes));
      out["top_ops"] = costs(top(ops));
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::printf("%s: %zu call%s, %s; %d iterations after %d warmup, %d threads\n", path_.c_str(),
                trace.calls.size(), trace.calls.size() == 1 ? "" : "s",
                report.checked ? "replay checked against its values" : "not checked (no values)", iters_,
                warmup_, at::get_num_threads());
    std::printf("load: %.1f MB in %s: %.1f MB/s\n", double(st.st_size) / 1e6, Us(load).c_str(), mb_per_s);
    PrintTable(rows, nullptr);
    std::printf("compiled / replay: %.2f\n", rows[2].spread().median / rows[0].spread().median);
    std::printf("interpreter overhead: %.2f us per op (replay minus its kernels, over %lld ops)\n",
                overhead_per_op, static_cast<long long>(replay_ops));
    if (recorded > 0)
      std::printf(
          "recorded backward (eager, under the recorder, so slower than eager alone): %s; replay %.2fx, "
          "compiled %.2fx of it\n",
          Us(recorded).c_str(), rows[0].spread().median / recorded, rows[2].spread().median / recorded);
    std::printf("most expensive nodes (median kernel time, summed over their ops):\n");
    for (const Cost& c : top(nodes))
      std::printf("  %10s  %3lld ops  %s\n", Us(c.us).c_str(), static_cast<long long>(c.count),
                  c.what.c_str());
    std::printf("most expensive ops:\n");
    for (const Cost& c : top(ops))
      std::printf("  %10s  %3lldx  %s\n", Us(c.us).c_str(), static_cast<long long>(c.count), c.what.c_str());
    return kExitOk;
  }

  // --- bench --record-overhead ------------------------------------------------

  int RunRecordOverhead() {
    // Step time: between one backward's end and the next, so it holds a
    // whole step (update, forward, backward) and not building the model.
    // `callbacks only`: during backward, a RecordFunction callback on every
    // op and node that asks for inputs and outputs and does nothing with
    // them. It is what libtorch charges a recorder built on RecordFunction
    // that watches backward only, as this one does in a C++ program, before
    // the recorder's own code runs: the floor under the `values` rows.
    enum Mode { kOff, kIdle, kCallbacksOnly, kNone, kInts, kAll };
    const std::vector<std::string> names = {"off",         "idle",        "callbacks only",
                                            "values none", "values ints", "values all"};
    std::vector<Row> rows;
    for (const std::string& n : names) rows.push_back({n, {}, -1});
    std::string err;
    const int repeats = warmup_ + iters_;
    for (int r = 0; r < repeats; ++r) {
      for (int mode = kOff; mode <= kAll; ++mode) {
        progress_->Show(r < warmup_ ? "warmup" : "run", r < warmup_ ? r : r - warmup_,
                        r < warmup_ ? warmup_ : iters_);
        std::vector<Clock::time_point> stamps;
        ModelOptions options;
        options.steps = steps_;
        options.batch = batch_;
        options.seed = seed_;
        options.run_backward = [&](const at::Tensor& loss) {
          at::CallbackHandle bare = 0;
          if (mode == kCallbacksOnly) {
            auto nothing = [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
              return nullptr;
            };
            bare = at::addGlobalCallback(
                at::RecordFunctionCallback(nothing).needsInputs(true).needsOutputs(true));
          }
          loss.backward();
          if (bare) at::removeCallback(bare);
          stamps.push_back(Clock::now());
        };
        std::unique_ptr<Recorder> recorder;
        if (mode != kOff && mode != kCallbacksOnly) {
          RecorderOptions ro;
          ro.values = mode == kAll ? ValuesMode::kAll : mode == kInts ? ValuesMode::kInts : ValuesMode::kNone;
          if (mode == kIdle && !CallFilter::Parse("1000000000", &ro.calls, &err))
            return Fail(name(), err, kExitFailure);
          recorder = std::make_unique<Recorder>(ro);
          if (!recorder->active())
            return Fail(name(), "another recorder is active in this process", kExitFailure);
        }
        ParameterObserver observe;
        if (recorder) observe = [&](const NamedTensors& p) { recorder->NameParameters(p); };
        bool ran = RunModel(model_, options, observe, nullptr, &err);
        if (!ran) return Fail(name(), err, kExitFailure);
        if (recorder) {
          recorder->Finish();
          if (!recorder->error().empty())
            return Fail(name(), "recording failed: " + recorder->error(), kExitFailure);
        }
        if (r < warmup_) continue;
        for (size_t k = 1; k < stamps.size(); ++k)
          rows[size_t(mode)].us.push_back(
              std::chrono::duration<double, std::micro>(stamps[k] - stamps[k - 1]).count());
      }
    }
    progress_->Clear();
    const Row& off = rows[0];
    if (json_) {
      nlohmann::json out = Header("record_overhead");
      out["model"] = model_;
      out["batch"] = batch_ ? batch_ : FindModel(model_)->default_batch;
      out["steps"] = steps_;
      out["timings"] = RowsJson(rows, nullptr);
      for (const Row& r : rows)
        out["timings"][r.name]["ratio_to_off"] = r.spread().median / off.spread().median;
      std::cout << out.dump(2) << "\n";
      return kExitOk;
    }
    std::printf(
        "bench --record-overhead %s (batch %d): step time (update, forward, backward), %d runs of %d steps "
        "after %d warmup, %d threads\n",
        model_.c_str(), batch_ ? batch_ : FindModel(model_)->default_batch, iters_, steps_, warmup_,
        at::get_num_threads());
    std::printf("  %-18s %11s %25s %9s\n", "recorder", "median", "p10-p90", "/ off");
    for (const Row& r : rows) {
      Spread s = r.spread();
      std::printf("  %-18s %11s %25s %9s\n", r.name.c_str(), Us(s.median).c_str(),
                  (Us(s.p10) + " - " + Us(s.p90)).c_str(), Fixed(s.median / off.spread().median, 2).c_str());
    }
    return kExitOk;
  }

  nlohmann::json Header(const std::string& mode) const {
    return {{"mode", mode},
            {"warmup", warmup_},
            {"iters", iters_},
            {"threads", at::get_num_threads()},
            {"tool_version", kToolVersion}};
  }

  std::string path_, model_;
  int batch_ = 0;
  uint64_t seed_ = 0;
  int warmup_ = 20;
  int iters_ = 200;
  int top_ = 10;
  int steps_ = 20;
  bool record_overhead_ = false;
  bool json_ = false;
  CLI::Option* warmup_option_ = nullptr;
  CLI::Option* iters_option_ = nullptr;
  std::unique_ptr<Progress> progress_;
  std::string torch_;
};

}  // namespace

std::unique_ptr<Command> MakeBenchCommand() { return std::make_unique<BenchCommand>(); }

}  // namespace cautograd
