// The JSON part of a trace, for the file layer (trace_file.cc): version 1 is
// bare JSON with values inline; version 2's JSON is the archive's
// `trace.json`, and its values name the archive entries that hold them.
// trace_io.cc parses it, trace_writer.cc writes it.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "lib/trace/archive.h"
#include "lib/trace/trace.h"

namespace cautograd {

// A version 2 archive's value entries, as the JSON refers to them: each must
// be referred to exactly once (an entry no value names could hide anything).
struct ArchiveIndex {
  const std::vector<ArchiveEntry>* entries = nullptr;
  std::unordered_map<std::string, size_t> by_name;  // values/N -> position in entries
  std::vector<bool> used;
};

// `archive`: null for version 1 text, else the archive the JSON came from.
bool ParseTraceJson(const std::string& text, const std::string& source, ArchiveIndex* archive, Trace* trace,
                    std::string* err);

// How a version 2 writer stored one value, in the order of the trace's calls
// and their values.
struct StoredRef {
  std::string entry;
  uint32_t crc = 0;  // of the raw bytes
  bool zstd = false;
};

// `stored`: null for version 1 (values inline, base64), else one per value.
std::string SerializeTraceJson(const Trace& trace, const std::vector<StoredRef>* stored);

}  // namespace cautograd
