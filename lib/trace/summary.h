// What a person wants first from a trace: its calls, node types, ops,
// tensors and bytes, hooks, guards and time. Data only; tools render it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

struct CountedName {
  std::string name;
  int64_t count = 0;
  double time_us = 0;  // summed over the occurrences
};

struct CallSummary {
  int64_t index = 0;
  std::string api;
  bool create_graph = false;
  int64_t nodes = 0;
  int64_t nodes_executed = 0;
  int64_t edges = 0;
  int64_t ops = 0;
  int64_t tensors = 0;
  int64_t storages = 0;
  int64_t tensor_bytes = 0;  // sum of distinct storages' sizes
  int64_t values = 0;
  int64_t value_bytes = 0;  // raw
  // Values a version 2 file keeps as zstd frames: how many, their bytes
  // stored, and what they expand to.
  int64_t values_compressed = 0, value_bytes_compressed = 0, value_bytes_compressed_raw = 0;
  int64_t leaves = 0;
  int64_t leaves_with_grad_before = 0;
  std::map<std::string, int64_t> hooks;  // by kind
  int64_t guard_nodes = 0, guard_tensors = 0, guard_scalars = 0, guard_sizes = 0;
  double duration_us = 0;
  std::vector<CountedName> node_types;     // most frequent first
  std::vector<CountedName> op_names;       // most frequent first
  std::vector<CountedName> slowest_nodes;  // by recorded time, at most 5
};

struct TraceSummary {
  Meta meta;
  int version = 0;
  std::vector<CallSummary> calls;
  std::vector<SkippedCall> skipped;
};

TraceSummary Summarize(const Trace& trace);

}  // namespace cautograd
