// libFuzzer target: the trace reader on any bytes, then what every command
// does with a trace it accepted (summary, guards, the writer, recompile's
// cache, the report's data without layouts, the Chrome trace, DOT). A trace is untrusted input: nothing here may crash, hang, or
// answer a refusal in more than one line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/recompile/cache_sim.h"
#include "lib/report/chrome_trace.h"
#include "lib/report/dot_text.h"
#include "lib/report/report.h"
#include "lib/trace/archive.h"
#include "lib/trace/summary.h"
#include "lib/trace/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cautograd;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  {
    // The walk that reads a stream file a crash cut short.
    const MemorySource source(bytes);
    std::vector<ArchiveEntry> scanned;
    std::string out, ignored;
    ScanArchive(source, 1 << 16, &scanned, &ignored);
    for (const ArchiveEntry& e : scanned) ReadArchiveEntry(source, e, &out, &ignored);
  }
  Trace trace;
  std::string err;
  // Either version; values that would take more memory than that are refused.
  ReadOptions options;
  options.max_value_bytes = int64_t(64) << 20;
  if (!ParseTraceBytes(bytes, "fuzz", &trace, &err, options)) {
    if (err.empty() || err.find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  Summarize(trace);
  Trace again;
  // What we write, we read, in both versions.
  if (!ParseTrace(SerializeTrace(trace), "again.json", &again, &err)) __builtin_trap();
  std::string archive;
  if (!SerializeTraceArchive(trace, WriteOptions(), &archive, &err)) __builtin_trap();
  if (!ParseTraceBytes(archive, "again.cag", &again, &err)) __builtin_trap();
  std::vector<CacheCall> calls;
  for (const Call& call : trace.calls) calls.push_back({"fuzz", &call});
  SimulateCache(calls, DynamicMode::kAuto);
  nlohmann::json page;
  if (!BuildReportData({{"fuzz", &trace}}, ReportOptions(), &page, &err)) __builtin_trap();
  RenderReportHtml(page);
  ChromeTraceJson(trace, "fuzz");
  for (const Call& call : trace.calls) {
    const std::vector<RepeatGroup> groups = FindRepeats(call);
    const GraphView view = BuildView(call, groups, std::vector<bool>(groups.size(), true));
    LayoutDot(view, false);
    CallDot(call, view, groups, true);
  }
  return 0;
}
