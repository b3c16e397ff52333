// cautograd show (alias summary): what a trace holds, at a glance.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/trace/human.h"
#include "lib/trace/summary.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

// "mm x3, add x2, ..." with at most `limit` entries.
std::string Counts(const std::vector<CountedName>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += items[i].name + " x" + std::to_string(items[i].count);
  }
  if (items.size() > limit) out += ", ... (" + std::to_string(items.size() - limit) + " more)";
  return out;
}

void RenderText(const std::string& path, const TraceSummary& s, std::ostream& out) {
  const Meta& m = s.meta;
  out << path << ": cautograd trace v" << s.version << ", " << s.calls.size() << " backward call"
      << (s.calls.size() == 1 ? "" : "s") << "\n";
  out << "  recorded " << m.time << " on " << (m.host.empty() ? "?" : m.host) << " by cautograd "
      << m.tool_version << ", libtorch " << m.libtorch_version << ", values=" << ValuesModeName(m.values);
  if (m.seed) out << ", seed=" << *m.seed;
  out << "\n";
  if (!m.command.empty()) {
    out << "  command:";
    for (const std::string& arg : m.command) out << " " << arg;
    out << "\n";
  }
  if (s.calls.empty())
    out << "  no backward call was recorded"
        << (s.skipped.empty() ? ": the program made none that was chosen (record --calls)" : "") << "\n";
  if (!s.skipped.empty()) {
    out << "  skipped  " << s.skipped.size() << " chosen call" << (s.skipped.size() == 1 ? "" : "s")
        << " could not be recorded:\n";
    for (const SkippedCall& k : s.skipped)
      out << "    " << (k.process ? "process " + std::to_string(k.process) + ", " : "") << k.reason << "\n";
  }
  for (const CallSummary& c : s.calls) {
    out << "\ncall " << c.index << ": " << c.api << (c.create_graph ? " (create_graph)" : "") << ", "
        << HumanMicros(c.duration_us) << "\n";
    out << "  nodes    " << c.nodes << " (" << c.nodes_executed << " executed), " << c.edges << " edges, "
        << c.leaves << " leaves (" << c.leaves_with_grad_before << " with .grad before)\n";
    out << "  types    " << Counts(c.node_types, 6) << "\n";
    out << "  ops      " << c.ops << ": " << Counts(c.op_names, 6) << "\n";
    out << "  tensors  " << c.tensors << " in " << c.storages << " storages, " << HumanBytes(c.tensor_bytes)
        << "; values kept for " << c.values << " (" << HumanBytes(c.value_bytes);
    if (c.values_compressed)
      out << "; " << c.values_compressed << " compressed with zstd, " << HumanBytes(c.value_bytes_compressed_raw)
          << " in " << HumanBytes(c.value_bytes_compressed);
    out << ")\n";
    out << "  hooks    ";
    if (c.hooks.empty()) out << "none";
    bool first = true;
    for (const auto& [kind, count] : c.hooks) {
      out << (first ? "" : ", ") << kind << " x" << count;
      first = false;
    }
    out << "\n";
    out << "  guards   " << c.guard_nodes << " nodes, " << c.guard_tensors << " tensors, " << c.guard_scalars
        << " scalars, " << c.guard_sizes << " sizes\n";
    if (!c.slowest_nodes.empty()) {
      out << "  slowest  ";
      for (size_t i = 0; i < c.slowest_nodes.size(); ++i)
        out << (i ? ", " : "") << c.slowest_nodes[i].name << " " << HumanMicros(c.slowest_nodes[i].time_us);
      out << "  (timed under the recorder)\n";
    }
  }
}

nlohmann::json CountsJson(const std::vector<CountedName>& items) {
  nlohmann::json arr = nlohmann::json::array();
  for (const CountedName& c : items)
    arr.push_back({{"name", c.name}, {"count", c.count}, {"time_us", c.time_us}});
  return arr;
}

void RenderJson(const std::string& path, const TraceSummary& s, std::ostream& out) {
  nlohmann::json j;
  j["file"] = path;
  j["version"] = s.version;
  j["meta"] = {{"tool_version", s.meta.tool_version},
               {"libtorch_version", s.meta.libtorch_version},
               {"time", s.meta.time},
               {"host", s.meta.host},
               {"command", s.meta.command},
               {"values", ValuesModeName(s.meta.values)}};
  j["meta"]["seed"] = s.meta.seed ? nlohmann::json(*s.meta.seed) : nlohmann::json(nullptr);
  nlohmann::json calls = nlohmann::json::array();
  for (const CallSummary& c : s.calls) {
    calls.push_back({{"index", c.index},
                     {"api", c.api},
                     {"create_graph", c.create_graph},
                     {"duration_us", c.duration_us},
                     {"nodes", c.nodes},
                     {"nodes_executed", c.nodes_executed},
                     {"edges", c.edges},
                     {"leaves", c.leaves},
                     {"leaves_with_grad_before", c.leaves_with_grad_before},
                     {"ops", c.ops},
                     {"tensors", c.tensors},
                     {"storages", c.storages},
                     {"tensor_bytes", c.tensor_bytes},
                     {"values", c.values},
                     {"value_bytes", c.value_bytes},
                     {"values_compressed", c.values_compressed},
                     {"value_bytes_compressed", c.value_bytes_compressed},
                     {"hooks", c.hooks},
                     {"guards",
                      {{"nodes", c.guard_nodes},
                       {"tensors", c.guard_tensors},
                       {"scalars", c.guard_scalars},
                       {"sizes", c.guard_sizes}}},
                     {"node_types", CountsJson(c.node_types)},
                     {"op_names", CountsJson(c.op_names)},
                     {"slowest_nodes", CountsJson(c.slowest_nodes)}});
  }
  j["calls"] = std::move(calls);
  nlohmann::json skipped = nlohmann::json::array();
  for (const SkippedCall& k : s.skipped)
    skipped.push_back({{"program_call", k.program_call}, {"process", k.process}, {"reason", k.reason}});
  j["skipped"] = std::move(skipped);
  out << j.dump(2) << "\n";
}

class ShowCommand : public Command {
 public:
  const char* name() const override { return "show"; }
  const char* description() const override {
    return "Summarise a trace: calls, node types, ops, tensors and bytes, hooks, guards, timing.";
  }
  std::vector<std::string> aliases() const override { return {"summary"}; }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "Trace file")->required();
    app->add_flag("--json", json_, "Print the summary as JSON");
    app->add_flag("--verify", verify_,
                  "Also read every value and check its size and checksum (without it, a version 2 trace's "
                  "values are not read at all)");
  }

  int Run() override {
    Trace trace;
    std::string err;
    ReadOptions metadata_only;  // --verify reads the values one at a time, below
    metadata_only.values = false;
    if (!ReadTraceFile(path_, &trace, &err, metadata_only)) return Fail(name(), err, kExitBadInput);
    if (verify_) {
      std::string bytes;
      for (const Call& call : trace.calls) {
        for (size_t i = 0; i < call.values.size(); ++i) {
          if (!ReadValueBytes(call, call.values[i], &bytes, &err))
            return Fail(name(), path_ + ": calls[" + std::to_string(call.index) + "].values[" + std::to_string(i) +
                                    "]: " + err,
                        kExitBadInput);
        }
      }
    }
    TraceSummary summary = Summarize(trace);
    if (json_)
      RenderJson(path_, summary, std::cout);
    else
      RenderText(path_, summary, std::cout);
    if (verify_ && !json_) {
      int64_t n = 0, bytes = 0;
      for (const CallSummary& c : summary.calls) {
        n += c.values;
        bytes = SaturatingAdd(bytes, c.value_bytes);
      }
      std::cout << "\nverified " << n << " value" << (n == 1 ? "" : "s") << " (" << HumanBytes(bytes)
                << "): every size and checksum matches\n";
    }
    return kExitOk;
  }

 private:
  std::string path_;
  bool json_ = false, verify_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeShowCommand() { return std::make_unique<ShowCommand>(); }

}  // namespace cautograd
