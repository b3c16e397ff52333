// The meta block of a trace written now, on this host.
#pragma once

#include <string>

#include "lib/trace/trace.h"

namespace cautograd {

// Tool version, `libtorch_version`, the time (UTC) and host, `values`;
// command and seed are the caller's to fill.
Meta NewMeta(ValuesMode values, const std::string& libtorch_version);

}  // namespace cautograd
