// `cautograd repro --emit python`: a standalone Python program that runs a
// call's recorded aten ops (all, or a range) on the recorded inputs and
// checks the recorded outputs, with nothing but torch. What a PyTorch
// maintainer asks for in an issue, written from a trace alone: no libtorch
// here, the program looks each op's schema up when it runs.
//
// The trace is untrusted: every name that reaches the program (operators,
// arguments, dtypes, strings) is checked against what Python can only read
// as data, and anything else is refused, so a hostile trace cannot put code
// in the reproducer.
#pragma once

#include <cstdint>
#include <string>

#include "lib/trace/trace.h"

namespace cautograd {

struct ReproOptions {
  int64_t call = 0;                      // position in Trace::calls
  int64_t first_op = -1, last_op = -1;   // op indices, inclusive; -1: the call's first or last
  int64_t inline_limit = 4096;           // inputs up to this many bytes go in the program, base64
  std::string data_name;                 // file name of the side file, as the program opens it
  std::string source;                    // the trace, as the user named it (for the header)
};

struct Repro {
  std::string program;  // the Python source
  std::string data;     // the side file's bytes ("" when every input is inline)
  int64_t ops = 0;
  int64_t checks = 0;  // recorded outputs compared
  int64_t inputs_inline = 0, inputs_in_data = 0;
  int64_t inline_bytes = 0;  // raw bytes of the inline inputs
};

// False and *err (one line: the op, the argument, why, and the way out)
// when the range cannot be reproduced from what the trace kept.
bool EmitPythonRepro(const Trace& trace, const ReproOptions& options, Repro* repro, std::string* err);

}  // namespace cautograd
