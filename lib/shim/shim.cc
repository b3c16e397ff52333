// libcautograd_shim.so, one per backend: libcautograd_preload.so loads it
// into each process of `cautograd record -- COMMAND` that uses this
// backend's libtorch (lib/shim/preload.cc). When the library loads it
// starts a Recorder configured from the environment, and a stream file in
// $CAUTOGRAD_SHIM_DIR (PID.stream, lib/trace/stream.h) whose own thread
// writes each value as the recorder copies it out and each call as it ends,
// so calls recorded before a crash are kept and the program's memory does
// not fill with values. `cautograd record` assembles the streams into one
// trace when COMMAND ends.
//
// Environment (set by cautograd record):
//   CAUTOGRAD_SHIM_DIR   folder for the call files; unset: the shim does nothing
//   CAUTOGRAD_VALUES     none | ints | inputs | all
//   CAUTOGRAD_COMPRESS   1: values as zstd frames where that pays (record --compress)
//   CAUTOGRAD_CALLS      call selection, as record --calls
//   CAUTOGRAD_MAX_CALLS  stop recording after this many calls in this process
//
// A failure of the shim never stops the program: a call it cannot record
// is left out, named on stderr and in the trace (its "skipped" list), and
// the calls after it are recorded; a failure outside any call says why on
// stderr, once, and stops recording. A backward call that compiled autograd runs is
// recorded as its graph and compiled autograd's key, without ops (none
// runs eagerly; a cache miss traces fake tensors, which are not looked at).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "lib/recorder/recorder.h"
#include "lib/torch_compat/torch_compat.h"
#include "lib/trace/stream.h"

namespace cautograd {
namespace {

std::atomic<bool> g_complained{false};

void Complain(const std::string& why) {
  if (g_complained.exchange(true)) return;
  std::fprintf(stderr, "cautograd: %s; recording stopped, the program goes on\n", why.c_str());
}

struct Shim {
  ValuesMode values = ValuesMode::kInts;
  pid_t owner = 0;  // a forked child must not write as its parent
  StreamWriter stream;
  Recorder* recorder = nullptr;

  // A finished or skipped call goes to the stream; this returns once it is
  // in the file.
  void Write(const Call* call, const SkippedCall* skipped) {
    if (getpid() != owner) return;
    Trace trace;
    trace.meta = RecorderMeta(values);
    if (call) {
      trace.calls.push_back(*call);
      trace.calls[0].index = 0;
    }
    if (skipped) {
      trace.skipped.push_back(*skipped);
      trace.skipped[0].process = owner;
    }
    stream.AddCall(std::move(trace));
    if (!stream.error().empty()) Complain("cannot write the recorded calls: " + stream.error());
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
  // The stream's directory: a whole archive. (A process that never gets
  // here leaves one that is read up to its last whole call.)
  std::string err;
  if (getpid() == g_shim->owner && !g_shim->stream.Close(&err)) Complain("cannot write the recorded calls: " + err);
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
  // Leaked on purpose, like the Recorder: a forked child inherits it, and
  // must neither join its writer thread (which the child does not have)
  // nor write the parent's file.
  auto* shim = new Shim();
  shim->values = options.values;
  shim->owner = getpid();
  const char* compress = std::getenv("CAUTOGRAD_COMPRESS");
  const std::string path = std::string(dir) + "/" + std::to_string(int(shim->owner)) + ".stream";
  if (!shim->stream.Open(path, compress && std::string(compress) == "1", StreamWriter::kDefaultBudget, &err)) {
    Complain(err);
    return;
  }
  options.on_value = [shim](std::string bytes) -> int64_t {
    if (getpid() != shim->owner) return -1;  // a forked child's: dropped, as its calls are
    return shim->stream.AddValue(std::move(bytes));
  };
  options.on_call = [shim](const Call& call) { shim->Write(&call, nullptr); };
  // A call that cannot be recorded is named in the trace, and on stderr as
  // it happens; `cautograd record` says so again at the end.
  options.on_skipped = [shim](const SkippedCall& skipped) {
    if (getpid() != shim->owner) return;
    std::fprintf(stderr, "cautograd: process %d: %s; not recorded, the calls after it are\n", int(shim->owner),
                 skipped.reason.c_str());
    shim->Write(nullptr, &skipped);
  };
  shim->recorder = new Recorder(std::move(options));
  if (!shim->recorder->active()) {
    Complain(shim->recorder->error());
    return;
  }
  g_shim = shim;
  std::atexit(StopAtExit);
}

void CompiledCallStarts(const compat::NodePtr& root, const void* task, const torch::autograd::edge_list& outputs) {
  if (g_shim && g_shim->recorder) g_shim->recorder->BeginCompiledCall(root, task, outputs);
}

void CompiledCallEnds() {
  if (g_shim && g_shim->recorder) g_shim->recorder->EndCompiledCall();
}

}  // namespace
}  // namespace cautograd

// libcautograd_preload.so interposes Engine::set_compiled_autograd and
// hands libtorch what this returns instead of compiled autograd's function.
extern "C" __attribute__((visibility("default"))) void* cautograd_shim_wrap_compiled_autograd(void* fn) {
  return cautograd::compat::WrapCompiledAutograd(fn, cautograd::CompiledCallStarts,
                                                 cautograd::CompiledCallEnds);
}
