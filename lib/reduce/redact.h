// Redaction: a trace holds the model's weights, its training data and the
// gradients that come from them. Before one is posted, `reduce --redact`
// replaces its floating-point values by seeded random ones wherever the
// condition it was reduced for still holds, tested, not assumed. Integer
// and bool tensors (indices, masks, targets) are never replaced: what they
// hold is usually what makes the bug. No libtorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

// `numel` random elements of a floating-point or complex `dtype` (normal,
// mean 0, deviation 1), little-endian, from `seed`. False for other dtypes.
bool RandomValueBytes(const std::string& dtype, int64_t numel, uint64_t seed, std::string* bytes);

struct RedactReport {
  int64_t replaced = 0, replaced_bytes = 0;  // floating-point values replaced
  int64_t kept = 0, kept_bytes = 0;          // floating-point values the condition needs as recorded
  int64_t integral = 0, integral_bytes = 0;  // integer and bool values, never replaced
  int64_t tests = 0;
  std::vector<std::string> kept_what;  // "call 0, input t3 (fc1.weight), 1.2 KiB", one per kept value
};

// Replaces floating-point values of `trace` (whose values must be in memory)
// by random ones from `seed`: all at once if the condition still holds,
// otherwise by halves, keeping each group whose replacement `holds`
// accepts. `holds` gets the trace as it would be.
void Redact(Trace* trace, uint64_t seed, const std::function<bool(const Trace&)>& holds, RedactReport* report);

}  // namespace cautograd
