// cautograd recompile: compiled autograd's cache simulated over recorded
// backward calls, with every miss's reasons; --emit prints the compiled
// programs instead.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/recompile/ca_cache.h"
#include "lib/recompile/cache_sim.h"
#include "lib/recompile/compiled_program.h"
#include "lib/recompile/reason_text.h"
#include "lib/recompile/sim_json.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

using nlohmann::json;

std::string Percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", v * 100);
  return buf;
}

std::string Values(const std::vector<int64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out;
}

std::string Plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

class RecompileCommand : public Command {
 public:
  const char* name() const override { return "recompile"; }
  const char* description() const override {
    return "Compiled autograd's cache over recorded backward calls: hits, misses and why.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", paths_, "Trace files; their calls go into one cache, in order")->required();
    app->add_option(
           "--dynamic", dynamic_,
           "auto: a size is static until it changes, then dynamic (PyTorch's default); static: every new "
           "size compiles; all: every size dynamic from the start")
        ->capture_default_str();
    app->add_option("--keys", keys_,
                    "compiled_autograd: compiled autograd's own keys, recorded on PyTorch 2.4+; simulated: "
                    "keys derived from the recorded ops (all a 1.13 trace has); auto: compiled_autograd "
                    "where every call has them")
        ->capture_default_str();
    app->add_flag("--json", json_, "Print the simulation as JSON");
    app->add_option("--emit", emit_,
                    "Print each cache entry's compiled program (text or json) instead of the simulation");
  }

  int Run() override {
    DynamicMode mode;
    if (!ParseDynamicMode(dynamic_, &mode))
      return Fail(name(), "unknown --dynamic mode '" + dynamic_ + "'; use auto, static or all",
                  kExitBadInput);
    if (!emit_.empty() && emit_ != "text" && emit_ != "json")
      return Fail(name(), "unknown --emit format '" + emit_ + "'; use text or json", kExitBadInput);
    traces_.resize(paths_.size());
    std::vector<CacheCall> calls;
    for (size_t i = 0; i < paths_.size(); ++i) {
      std::string err;
      ReadOptions metadata_only;  // compiled autograd's cache never looks at values
      metadata_only.values = false;
      if (!ReadTraceFile(paths_[i], &traces_[i], &err, metadata_only)) return Fail(name(), err, kExitBadInput);
      for (const Call& call : traces_[i].calls) calls.push_back({paths_[i], &call});
    }
    // Where some calls ran under compiled autograd, those are the calls its
    // cache saw; the program's eager calls never went near it.
    size_t eager = 0;
    calls = CallsTheCacheSaw(std::move(calls), &eager);
    if (eager > 0)
      std::cerr << "cautograd recompile: " << calls.size() << " of " << calls.size() + eager
                << " calls ran under compiled autograd; the cache is those calls, the eager ones left out\n";
    if (keys_ != "auto" && keys_ != "compiled_autograd" && keys_ != "simulated")
      return Fail(name(), "unknown --keys '" + keys_ + "'; use auto, compiled_autograd or simulated",
                  kExitBadInput);
    const bool real = keys_ == "compiled_autograd" || (keys_ == "auto" && emit_.empty() && HaveRealKeys(calls));
    if (keys_ == "compiled_autograd" && !HaveRealKeys(calls))
      return Fail(name(),
                  "--keys compiled_autograd: some calls have no compiled autograd key (recorded with libtorch "
                  "before 2.4, or by an older cautograd); use --keys simulated",
                  kExitBadInput);
    if (real && !emit_.empty())
      return Fail(name(), "--emit builds programs from the recorded ops: use it with --keys simulated",
                  kExitBadInput);
    const CacheSimulation sim = real ? SimulateRealCache(calls, mode) : SimulateCache(calls, mode);
    if (!emit_.empty()) {
      std::vector<CompiledProgram> programs;
      for (const CacheEntry& e : sim.entries) programs.push_back(BuildProgram(calls, sim, e.id));
      if (emit_ == "json") {
        json out = json::array();
        for (const CompiledProgram& p : programs) out.push_back(ProgramJson(p, sim));
        std::cout << out.dump(2) << "\n";
      } else {
        for (size_t i = 0; i < programs.size(); ++i) {
          if (i) std::cout << "\n";
          PrintProgram(programs[i], sim);
        }
      }
      return kExitOk;
    }
    if (json_)
      std::cout << SimulationJson(sim, paths_).dump(2) << "\n";
    else
      PrintSimulation(sim);
    return kExitOk;
  }

 private:
  bool many_files() const { return paths_.size() > 1; }

  static std::string KeysText(const CacheSimulation& sim) {
    return sim.keys == "compiled_autograd" ? "compiled autograd's own keys" : "simulated keys";
  }

  std::string CallName(const CacheCallResult& c) const {
    return "call " + std::to_string(c.call) + (many_files() ? " of " + c.source : "");
  }

  void PrintSimulation(const CacheSimulation& sim) {
    std::cout << (many_files() ? std::to_string(paths_.size()) + " traces" : paths_[0]) << ": "
              << Plural(int64_t(sim.calls.size()), "backward call") << " into one cache (--dynamic "
              << DynamicModeName(sim.mode) << ", " << KeysText(sim) << ")\n";
    for (const CacheCallResult& c : sim.calls) {
      if (!c.reasons.empty() && c.reasons[0].kind == MissReason::Kind::kUnsupported) {
        std::cout << CallName(c) << ": UNSUPPORTED\n  - " << ReasonText(c.reasons[0]) << "\n    hint: "
                  << ReasonHint(c.reasons[0]) << "\n";
        continue;
      }
      if (c.hit) {
        std::cout << CallName(c) << ": hit, entry " << c.entry << "\n";
        continue;
      }
      const CacheEntry& e = sim.entries[size_t(c.entry)];
      bool recompile = !c.reasons.empty() && c.reasons[0].kind == MissReason::Kind::kSize &&
                       sim.mode != DynamicMode::kStatic;
      std::cout << CallName(c) << ": MISS, " << (recompile ? "recompile" : "compile") << " entry " << e.id
                << " (" << Plural(c.nodes, "node") << ", " << Plural(c.sizes, "size input") << ")\n";
      std::string last_hint;
      for (const MissReason& r : c.reasons) {
        std::cout << (r.explains ? "    because " : "  - ") << ReasonText(r) << "\n";
        std::string hint = ReasonHint(r);
        if (!hint.empty() && hint != last_hint) std::cout << "    hint: " << hint << "\n";
        last_hint = hint;
      }
      if (!c.log.empty()) {
        std::cout << "  compiled autograd would log:\n";
        for (const std::string& line : c.log) std::cout << "    " << line << "\n";
      }
    }
    std::cout << "\nsummary: " << Plural(int64_t(sim.calls.size()), "call") << ", "
              << Plural(sim.compiles(), "compile") << " (" << Plural(sim.recompiles(), "recompile") << "), "
              << Plural(sim.hits(), "hit") << ": hit rate " << Percent(sim.hit_rate()) << "; "
              << sim.entries.size() << (sim.entries.size() == 1 ? " cache entry" : " cache entries") << "\n";
    for (const CacheEntry& e : sim.entries) {
      int64_t dynamic = e.dynamic_sizes();
      if (dynamic == 0) continue;
      std::cout << "dynamic sizes of entry " << e.id << " (" << dynamic << " of " << e.sizes.size() << "):\n";
      if (sim.mode == DynamicMode::kAll) {
        std::cout << "  all of them (--dynamic all)\n";
        continue;
      }
      // On compiled autograd's keys, sizes[k] counts the dynamic sizes (as its
      // log does); k is their position among this entry's dynamic sizes.
      int64_t k = 0;
      for (const EntrySize& s : e.sizes) {
        if (!s.dynamic) continue;
        const int64_t index = sim.keys == "compiled_autograd" ? k++ : s.input.index;
        std::cout << "  sizes[" << index << "] = " << SizeInputText(s.input) << ": seen "
                  << Values(s.seen) << "; dynamic since " << CallName(sim.calls[size_t(s.dynamic_since)])
                  << "\n";
      }
    }
  }

  // --- compiled programs ---------------------------------------------------

  static std::string Symbol(int64_t size_index) { return "s" + std::to_string(size_index); }

  static std::string ShapeText(const ProgramInput& in) {
    std::string out = in.dtype + "[";
    for (size_t d = 0; d < in.shape.size(); ++d)
      out += (d ? ", " : "") + (in.symbols[d] >= 0 ? Symbol(in.symbols[d]) : std::to_string(in.shape[d]));
    return out + "]";
  }

  // An argument as the program passes it: size symbols in place of dynamic
  // elements.
  static std::string ArgInProgram(const Arg& a, const std::string& name, const ProgramOp& pop) {
    if ((a.kind == Arg::Kind::kInt || a.kind == Arg::Kind::kIntList) && a.is_size) {
      std::vector<int64_t> v = a.kind == Arg::Kind::kInt ? std::vector<int64_t>{a.i} : a.ints;
      std::vector<std::string> parts;
      for (size_t k = 0; k < v.size(); ++k) {
        std::string text = std::to_string(v[k]);
        for (const SizeSymbol& s : pop.symbols)
          if (s.arg == name && s.element == int64_t(k)) text = Symbol(s.size_index);
        parts.push_back(text);
      }
      if (a.kind == Arg::Kind::kInt) return parts[0];
      std::string out = "[";
      for (size_t k = 0; k < parts.size(); ++k) out += (k ? ", " : "") + parts[k];
      return out + "]";
    }
    return ArgText(a);
  }

  static std::string OpLine(const Call& call, const ProgramOp& pop) {
    const Op& op = call.ops[size_t(pop.op)];
    std::string outs;
    for (size_t i = 0; i < op.outputs.size(); ++i) outs += (i ? ", " : "") + ArgText(op.outputs[i]);
    std::string args;
    for (size_t i = 0; i < op.args.size(); ++i) {
      const std::string& name = i < op.arg_names.size() ? op.arg_names[i] : std::string();
      bool tensor = op.args[i].kind == Arg::Kind::kTensor || op.args[i].kind == Arg::Kind::kTensorList;
      args +=
          (i ? ", " : "") + (tensor || name.empty() ? "" : name + "=") + ArgInProgram(op.args[i], name, pop);
    }
    std::string line = (outs.empty() ? "" : outs + " = ") + OpLabel(op) + "(" + args + ")";
    if (!pop.frees.empty()) {
      line += "; del ";
      for (size_t i = 0; i < pop.frees.size(); ++i)
        line += (i ? ", " : "") + std::string("t") + std::to_string(pop.frees[i]);
    }
    return line;
  }

  static std::string GroupText(const Call& call, const ProgramOp& pop) {
    const Op& op = call.ops[size_t(pop.op)];
    if (pop.kind == ProgramOp::Kind::kEngine || op.node < 0) return "engine";
    const Node& node = call.nodes[size_t(op.node)];
    std::string where = NodeCallText(node.type, pop.node_call, node.leaf ? node.leaf->name : "");
    switch (pop.kind) {
      case ProgramOp::Kind::kHook:
        return "pre-hook of " + where;
      case ProgramOp::Kind::kPostNode:
        return "outputs of " + where;
      case ProgramOp::Kind::kGradSum:
        return "gradient sum after " + where;
      case ProgramOp::Kind::kAccumulate:
        return "accumulate: " + where;
      default:
        return where;
    }
  }

  std::string CallsText(const CompiledProgram& p, const CacheSimulation& sim) const {
    std::string out;
    for (size_t i = 0; i < p.calls.size(); ++i)
      out += (i ? ", " : "") + CallName(sim.calls[size_t(p.calls[i])]);
    return out;
  }

  void PrintProgram(const CompiledProgram& p, const CacheSimulation& sim) const {
    const Call& call = *p.reference;
    std::cout << "entry " << p.entry << ": runs " << CallsText(p, sim) << "; "
              << Plural(int64_t(p.ops.size()), "op") << ", " << p.removed.size() << " removed as dead, "
              << p.size_symbols.size() << " dynamic size" << (p.size_symbols.size() == 1 ? "" : "s")
              << " (tensor and op ids are call " << call.index << "'s)\n";
    std::cout << "inputs:\n";
    for (const ProgramInput& in : p.inputs) {
      std::cout << "  t" << in.tensor << ": " << ShapeText(in) << " " << in.role;
      if (in.node_call >= 0)
        std::cout << (in.role == "saved" ? " by " : " of ") << NodeCallText(in.node_type, in.node_call, "");
      if (!in.name.empty()) std::cout << " (" << in.name << ")";
      std::cout << "\n";
    }
    if (!p.size_symbols.empty()) {
      std::cout << "size symbols:\n";
      const CacheEntry& e = sim.entries[size_t(p.entry)];
      std::set<int64_t> used;
      for (const ProgramInput& in : p.inputs) used.insert(in.symbols.begin(), in.symbols.end());
      for (const ProgramOp& pop : p.ops)
        for (const SizeSymbol& s : pop.symbols) used.insert(s.size_index);
      for (int64_t j : p.size_symbols) {
        const SizeInput& in = e.sizes[size_t(j)].input;
        std::cout << "  " << Symbol(j) << " = sizes[" << j << "] = " << SizeInputText(in);
        // Sizes of gradients the program computes itself are checked, not passed in.
        if (!used.count(j))
          std::cout << (in.where.op >= 0 ? " (checked only: the op is dead)"
                                         : " (checked only: the program computes t" +
                                               std::to_string(in.where.tensor) + ")");
        std::cout << "\n";
      }
    }
    std::cout << "program:\n";
    std::string group;
    for (const ProgramOp& pop : p.ops) {
      std::string g = GroupText(call, pop);
      if (g != group) std::cout << "  # " << g << "\n";
      group = g;
      std::cout << "  op " << pop.op << ": " << OpLine(call, pop) << "\n";
    }
    std::cout << "outputs:\n";
    for (const ProgramOutput& o : p.outputs) std::cout << "  t" << o.tensor << ": " << o.what << "\n";
    if (!p.removed.empty()) {
      std::cout << "removed as dead:";
      for (int64_t i : p.removed) std::cout << " op " << i << " (" << OpLabel(call.ops[size_t(i)]) << ")";
      std::cout << "\n";
    }
  }

  json ProgramJson(const CompiledProgram& p, const CacheSimulation& sim) const {
    const Call& call = *p.reference;
    json out = {{"entry", p.entry}, {"file", p.source}, {"reference_call", call.index}};
    out["calls"] = json::array();
    for (int64_t k : p.calls)
      out["calls"].push_back({{"file", sim.calls[size_t(k)].source}, {"call", sim.calls[size_t(k)].call}});
    out["inputs"] = json::array();
    for (const ProgramInput& in : p.inputs) {
      json shape = json::array();
      for (size_t d = 0; d < in.shape.size(); ++d) {
        if (in.symbols[d] >= 0)
          shape.push_back(Symbol(in.symbols[d]));
        else
          shape.push_back(in.shape[d]);
      }
      json ji = {{"tensor", in.tensor},
                 {"role", in.role},
                 {"dtype", in.dtype},
                 {"device", in.device},
                 {"shape", shape}};
      if (in.node_call >= 0) {
        ji["node_call"] = in.node_call;
        ji["node_type"] = in.node_type;
      }
      if (!in.name.empty()) ji["name"] = in.name;
      out["inputs"].push_back(ji);
    }
    out["size_symbols"] = json::array();
    const CacheEntry& e = sim.entries[size_t(p.entry)];
    for (int64_t j : p.size_symbols) {
      json js = SizeJson(e.sizes[size_t(j)].input);
      js["symbol"] = Symbol(j);
      out["size_symbols"].push_back(js);
    }
    out["ops"] = json::array();
    for (const ProgramOp& pop : p.ops) {
      const Op& op = call.ops[size_t(pop.op)];
      json jo = {{"op", pop.op},
                 {"name", OpLabel(op)},
                 {"kind", ProgramOpKindName(pop.kind)},
                 {"text", OpLine(call, pop)}};
      if (pop.node_call >= 0) jo["node_call"] = pop.node_call;
      jo["frees"] = pop.frees;
      out["ops"].push_back(jo);
    }
    out["outputs"] = json::array();
    for (const ProgramOutput& o : p.outputs)
      out["outputs"].push_back({{"tensor", o.tensor}, {"what", o.what}});
    out["removed"] = p.removed;
    return out;
  }

  std::vector<std::string> paths_;
  std::vector<Trace> traces_;
  std::string dynamic_ = "auto";
  std::string keys_ = "auto";
  std::string emit_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeRecompileCommand() { return std::make_unique<RecompileCommand>(); }

}  // namespace cautograd
