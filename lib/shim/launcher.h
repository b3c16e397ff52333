// What `cautograd record -- COMMAND` does around the shim: find which
// libtorch COMMAND will load, run it with the preload library (which loads
// the backend's shim into the processes that use that libtorch), and
// assemble the calls it recorded into one trace. No libtorch here.
#pragma once

#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

struct LaunchOptions {
  std::vector<std::string> command;  // argv; command[0] looked up in PATH
  std::string preload;               // libcautograd_preload.so
  std::string shim;                  // the backend's libcautograd_shim.so
  std::string libc10;                // realpath of the libc10 the shim links
  std::string dir;                   // where the shim writes call files
  ValuesMode values = ValuesMode::kInts;
  std::string calls = "all";
  int64_t max_calls = -1;
  bool compress = false;  // the streams' values as zstd frames where that pays
};

// The libtorch a command will load, found before it runs.
struct ProgramTorch {
  // False for a program that loads no libtorch itself (a shell script
  // wrapping python): its children are matched as they start.
  bool uses_torch = false;
  std::string libc10;   // realpath of the libc10 it will load
  std::string version;  // torch.__version__, for a Python
  std::string python;   // the interpreter, for a Python
};

// For a Python (by name or #! line): asks it to import torch and say its
// version and directory. For an ELF program: asks ldd where its libc10
// is. False and *err when COMMAND is not found, its Python cannot import
// torch, or its libc10 cannot be found by the loader.
bool FindProgramTorch(const std::vector<std::string>& command, ProgramTorch* torch, std::string* err);

// Runs COMMAND with the shim preloaded and its settings in the
// environment; stdin, stdout and stderr pass through. *status is the raw
// wait status. SIGINT and SIGTERM reach COMMAND (same process group) while
// this process waits for it, so the calls recorded so far are kept.
bool RunWithShim(const LaunchOptions& options, int* status, std::string* err);

// The stream files in `dir` (one per process, lib/trace/stream.h, whole or
// cut short by a crash), validated, their calls in the order they started,
// numbered from 0. Meta comes from the first call. The calls' values stay in
// the streams until the trace is written (Call::value_source).
bool AssembleCalls(const std::string& dir, Trace* trace, std::string* err);

// Removes `dir` and the call files in it.
void RemoveCallDir(const std::string& dir);

}  // namespace cautograd
