// libFuzzer target: the trace reader on any bytes, then what every command
// does with a trace it accepted (summary, guards, the writer, recompile's
// cache). A trace is untrusted input: nothing here may crash, hang, or
// answer a refusal in more than one line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/recompile/cache_sim.h"
#include "lib/trace/summary.h"
#include "lib/trace/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cautograd;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Trace trace;
  std::string err;
  if (!ParseTrace(text, "fuzz.json", &trace, &err)) {
    if (err.empty() || err.find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
  Summarize(trace);
  Trace again;
  if (!ParseTrace(SerializeTrace(trace), "again.json", &again, &err)) __builtin_trap();  // what we write, we read
  std::vector<CacheCall> calls;
  for (const Call& call : trace.calls) calls.push_back({"fuzz.json", &call});
  SimulateCache(calls, DynamicMode::kAuto);
  return 0;
}
