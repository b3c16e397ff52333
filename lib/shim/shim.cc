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
#include <mutex>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include <dlfcn.h>
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

  // A skipped call goes to the stream, whose thread writes it while the
  // program goes on (a finished one goes by on_call_deferred, below).
  void Write(const SkippedCall* skipped) {
    if (getpid() != owner) return;
    Trace trace;
    trace.meta = RecorderMeta(values);
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

// A fatal signal gives the stream's thread up to 2 s to write the calls
// that had ended, then goes on as it would have (the handler that was
// there before, or the default: the program dies as it would have).
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGQUIT};
struct sigaction g_previous[sizeof kFatalSignals / sizeof kFatalSignals[0]];

void OnFatalSignal(int sig, siginfo_t* info, void*) {
  if (g_shim && getpid() == g_shim->owner) g_shim->stream.WaitForCalls(2.0);
  for (size_t i = 0; i < sizeof kFatalSignals / sizeof kFatalSignals[0]; ++i)
    if (kFatalSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
  // A fault the kernel raised (si_code > 0) comes back when the instruction
  // runs again, to the handler put back; a signal sent (kill, raise, abort)
  // is sent again.
  if (!info || info->si_code <= 0 || (sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL))
    raise(sig);
}

// Waits for the calls that had ended to be written: before _exit (through
// libcautograd_preload.so), and at exit before libtorch's own teardown (a
// call is finished on the stream's thread with libtorch's operator schemas).
void DrainStream() {
  if (g_shim && getpid() == g_shim->owner) g_shim->stream.WaitForCalls(600.0);
}

// Registered once a call has been recorded, that is after libtorch was
// loaded: atexit handlers run last first, so this runs before libtorch's
// static destructors, and StopAtExit (registered before) after them.
void DrainAtExitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(DrainStream); });
}

void CatchFatalSignals() {
  struct sigaction sa {};
  sa.sa_sigaction = OnFatalSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_SIGINFO;
  for (size_t i = 0; i < sizeof kFatalSignals / sizeof kFatalSignals[0]; ++i)
    sigaction(kFatalSignals[i], &sa, &g_previous[i]);
}

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
  // The pid alone could be taken: a process that execs keeps it, and loads
  // the shim again.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const std::string path = std::string(dir) + "/" + std::to_string(int(shim->owner)) + "-" +
                           std::to_string(int64_t(now.tv_sec) * 1000000000 + now.tv_nsec) + ".stream";
  if (!shim->stream.Open(path, compress && std::string(compress) == "1", StreamWriter::kDefaultBudget, &err)) {
    Complain(err);
    return;
  }
  options.on_value = [shim](std::string bytes) -> int64_t {
    if (getpid() != shim->owner) return -1;  // a forked child's: dropped, as its calls are
    return shim->stream.AddValue(std::move(bytes));
  };
  // What is left of a call when it ends (its ops written out, its guards)
  // is done on the stream's thread, with the writing.
  options.on_call_deferred = [shim](std::function<Call()> finish) {
    if (getpid() != shim->owner) return;
    DrainAtExitOnce();
    const ValuesMode values = shim->values;
    shim->stream.AddCall([finish = std::move(finish), values] {
      Trace trace;
      trace.meta = RecorderMeta(values);
      trace.calls.push_back(finish());
      trace.calls[0].index = 0;
      return trace;
    });
    if (!shim->stream.error().empty()) Complain("cannot write the recorded calls: " + shim->stream.error());
    if (shim->recorder && !shim->recorder->error().empty()) Complain(shim->recorder->error());
  };
  // A call that cannot be recorded is named in the trace, and on stderr as
  // it happens; `cautograd record` says so again at the end.
  options.on_skipped = [shim](const SkippedCall& skipped) {
    if (getpid() != shim->owner) return;
    std::fprintf(stderr, "cautograd: process %d: %s; not recorded, the calls after it are\n", int(shim->owner),
                 skipped.reason.c_str());
    shim->Write(&skipped);
  };
  shim->recorder = new Recorder(std::move(options));
  if (!shim->recorder->active()) {
    Complain(shim->recorder->error());
    return;
  }
  g_shim = shim;
  std::atexit(StopAtExit);
  CatchFatalSignals();
  using BeforeExit = void (*)(void (*)());
  if (auto set = reinterpret_cast<BeforeExit>(dlsym(RTLD_DEFAULT, "cautograd_preload_before_exit"))) set(DrainStream);
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
