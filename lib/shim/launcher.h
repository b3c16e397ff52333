// What `cautograd record -- COMMAND` does around the shim: find COMMAND,
// check it will use the libtorch the shim was built against, run it with
// the shim preloaded, and assemble the calls it recorded into one trace.
#pragma once

#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

struct LaunchOptions {
  std::vector<std::string> command;  // argv; command[0] looked up in PATH
  std::string shim;                  // path of libcautograd_shim.so
  std::string dir;                   // where the shim writes call files
  ValuesMode values = ValuesMode::kInts;
  std::string calls = "all";
  int64_t max_calls = -1;
};

// The shim next to `exe` (a build tree), or in ../lib/cautograd (an
// installed prefix). False and *err when neither exists.
bool FindShim(const std::string& exe, std::string* shim, std::string* err);

// Refuses, before anything runs, a COMMAND that would load a libtorch other
// than the one at `our_libc10` (the path of our libc10.so): a C++ program
// linked against another one, or a Python whose torch is not Debian's (or
// that has no torch at all). Programs that do not use libtorch directly
// (a shell wrapping python) pass: their children are checked by nobody,
// and the shim records whatever runs backward.
bool CheckCommand(const std::vector<std::string>& command, const std::string& our_libc10, std::string* err);

// Runs COMMAND with the shim preloaded and its settings in the
// environment; stdin, stdout and stderr pass through. *status is the raw
// wait status. SIGINT and SIGTERM reach COMMAND (same process group) while
// this process waits for it, so the calls recorded so far are kept.
bool RunWithShim(const LaunchOptions& options, int* status, std::string* err);

// The call files in `dir`, validated, in the order the calls started,
// numbered from 0. Meta comes from the first file.
bool AssembleCalls(const std::string& dir, Trace* trace, std::string* err);

// Removes `dir` and the call files in it.
void RemoveCallDir(const std::string& dir);

}  // namespace cautograd
