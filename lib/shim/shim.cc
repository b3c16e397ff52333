// libcautograd_shim.so: `cautograd record -- COMMAND` preloads it into
// COMMAND (and COMMAND's children) with LD_PRELOAD. When the library loads
// it starts a Recorder configured from the environment; each backward call
// the process makes is written at once, atomically, as a one-call trace in
// $CAUTOGRAD_SHIM_DIR, so calls recorded before a crash are kept.
// `cautograd record` assembles the files into one trace when COMMAND ends.
//
// Environment (set by cautograd record):
//   CAUTOGRAD_SHIM_DIR   folder for the call files; unset: the shim does nothing
//   CAUTOGRAD_VALUES     none | ints | all
//   CAUTOGRAD_CALLS      call selection, as record --calls
//   CAUTOGRAD_MAX_CALLS  stop recording after this many calls in this process
//
// A failure of the shim never stops the program: it says why on stderr,
// once, and stops recording.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "lib/recorder/recorder.h"
#include "lib/trace/trace_io.h"

namespace cautograd {
namespace {

std::atomic<bool> g_complained{false};

void Complain(const std::string& why) {
  if (g_complained.exchange(true)) return;
  std::fprintf(stderr, "cautograd: %s; recording stopped, the program goes on\n", why.c_str());
}

struct Shim {
  std::string dir;
  ValuesMode values = ValuesMode::kInts;
  pid_t owner = 0;  // a forked child must not write as its parent
  std::atomic<int64_t> written{0};
  Recorder* recorder = nullptr;

  void Write(const Call& call) {
    if (getpid() != owner) return;
    Trace trace;
    trace.meta = RecorderMeta(values);
    trace.calls.push_back(call);
    trace.calls[0].index = 0;
    char name[64];
    std::snprintf(name, sizeof name, "/%d-%06lld.json", int(owner), static_cast<long long>(written++));
    std::string err;
    // Atomic (a crash of the program never leaves half a file) but not
    // flushed to disk: `cautograd record` writes the final trace durably.
    if (!WriteTraceFile(dir + name, trace, &err, Durability::kCrashSafe))
      Complain("cannot write a recorded call: " + err);
    if (recorder && !recorder->error().empty()) Complain(recorder->error());
  }
};

Shim* g_shim = nullptr;

void StopAtExit() {
  if (!g_shim || !g_shim->recorder) return;
  if (getpid() == g_shim->owner && !g_shim->recorder->error().empty()) Complain(g_shim->recorder->error());
  // Take the callback out before libtorch's own teardown; the Recorder
  // itself is left alive on purpose (its calls are already on disk).
  g_shim->recorder->Finish();
}

__attribute__((constructor)) void StartShim() {
  const char* dir = std::getenv("CAUTOGRAD_SHIM_DIR");
  if (!dir || !*dir) return;
  RecorderOptions options;
  options.keep_calls = false;
  std::string err;
  const char* values = std::getenv("CAUTOGRAD_VALUES");
  if (values && !ParseValuesMode(values, &options.values)) {
    Complain(std::string("bad CAUTOGRAD_VALUES '") + values + "'");
    return;
  }
  const char* calls = std::getenv("CAUTOGRAD_CALLS");
  if (calls && !CallFilter::Parse(calls, &options.calls, &err)) {
    Complain(err);
    return;
  }
  if (const char* max = std::getenv("CAUTOGRAD_MAX_CALLS")) {
    char* end = nullptr;
    long long n = std::strtoll(max, &end, 10);
    if (!*max || *end || n < 0) {
      Complain(std::string("bad CAUTOGRAD_MAX_CALLS '") + max + "'");
      return;
    }
    options.calls.max_calls = n;
  }
  auto* shim = new Shim();
  shim->dir = dir;
  shim->values = options.values;
  shim->owner = getpid();
  options.on_call = [shim](const Call& call) { shim->Write(call); };
  shim->recorder = new Recorder(std::move(options));
  if (!shim->recorder->active()) {
    Complain(shim->recorder->error());
    return;
  }
  g_shim = shim;
  std::atexit(StopAtExit);
}

}  // namespace
}  // namespace cautograd
