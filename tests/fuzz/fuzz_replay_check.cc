// libFuzzer target: replay's checks of a trace it was given, everything
// before any kernel runs (CheckReplayable: operators, arguments against
// schemas, tensor lifetimes, the memory budget). A refusal is one line;
// nothing may crash, hang or allocate past the budget.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/replay/replay.h"
#include "lib/trace/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cautograd;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Trace trace;
  std::string err;
  // Either version; values that would take more memory than that are refused.
  ReadOptions options;
  options.max_value_bytes = int64_t(64) << 20;
  if (!ParseTraceBytes(bytes, "fuzz", &trace, &err, options)) return 0;
  ReplayOptions replay;
  replay.max_memory = int64_t(64) << 20;
  if (!CheckReplayable(trace, replay, &err) && (err.empty() || err.find('\n') != std::string::npos))
    __builtin_trap();
  return 0;
}
