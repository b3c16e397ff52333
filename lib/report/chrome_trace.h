// A trace's timings in the Chrome Trace Event format, which Perfetto UI and
// chrome://tracing open: one process per backward call, one track per
// recorded thread, each node a complete ("X") event with its ops nested
// inside. Events on a track never overlap: children are clamped inside
// their parent and siblings after the one before, so nothing is pushed to
// an overflow track. Times are microseconds from the first call's start.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lib/trace/trace.h"

namespace cautograd {

nlohmann::json ChromeTraceJson(const Trace& trace, const std::string& source);

}  // namespace cautograd
