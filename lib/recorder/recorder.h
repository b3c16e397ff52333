// The recorder: captures every backward call made while a Recorder lives.
//
//   cautograd::Recorder recorder(options);
//   loss.backward();                       // recorded
//   cautograd::Trace trace = recorder.Finish();
//
// It works through global RecordFunction callbacks (installed by the
// constructor, removed by Finish or the destructor) and walks the graph of
// each call from the engine's current graph task. Outside Python it also
// makes libtorch's default autograd engine one that tells it each call's
// roots before running it (the same engine code; Finish puts libtorch's
// own back), so that it need not watch the forward pass. Recording never changes
// the recorded program's results: it holds only weak references to the
// tensors it sees (so their memory is not reused under a recorded id, and
// in-place/steal decisions that look at use counts are unaffected), and
// dispatches no op while the program runs except to copy values off a
// non-CPU device.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lib/torch_compat/torch_compat.h"
#include "lib/trace/call_filter.h"
#include "lib/trace/trace.h"

namespace cautograd {

struct RecorderOptions {
  ValuesMode values = ValuesMode::kInts;
  CallFilter calls;  // which backward calls to record, by index from 0
  // Called after each recorded call is complete, on the thread that ran
  // backward (e.g. to write it out at once, so calls survive a crash of the
  // program). Must not throw. The call it gets has its guards; calls kept
  // for Finish() get theirs in Finish(), after the program's steps.
  std::function<void(const Call&)> on_call;
  // Whether Finish() returns the calls; false keeps memory flat in long
  // runs whose calls on_call takes care of.
  bool keep_calls = true;
  // Called for each chosen backward call that cannot be recorded (a graph
  // the recorder cannot follow, a tensor it cannot represent, a call
  // compiled autograd runs where it cannot be read), with which call of
  // the process it was and why, on the thread that ran it. The calls after
  // it are still recorded. Finish() returns them in Trace::skipped too,
  // when keep_calls. Must not throw.
  std::function<void(const SkippedCall&)> on_skipped;
  // Instead of on_call, for a recorder whose calls are not kept: the call
  // is handed over unfinished, with `finish`, which makes of it the Call
  // on_call would get (its ops and tensors written out, its guards) on any
  // thread, once. A stream writer runs it on its own thread, so that work
  // leaves the program's. Must not throw.
  std::function<void(std::function<Call()> finish)> on_call_deferred;
  // Takes each kept value's bytes as soon as they are copied out of the
  // tensor, on the thread that copied them; the call's Value then holds the
  // id it returns (`spooled`) and no bytes. A stream writer (lib/trace/
  // stream.h) takes them, so that a call's values do not pile up in memory
  // until it ends. Thread-safe; must not throw.
  std::function<int64_t(std::string bytes)> on_value;
  // Also record, per call, compiled autograd's own cache key (PyTorch 2.4+;
  // docs/trace-format.md, "compiled_autograd"). Costs one more walk of the
  // graph at the start of each recorded call.
  bool compiled_autograd_key = true;
};

// The meta block of a trace this process writes: tool and libtorch
// versions, time, host, values mode.
Meta RecorderMeta(ValuesMode values);

class Recorder {
 public:
  explicit Recorder(RecorderOptions options = RecorderOptions());
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // False if another Recorder is active in this process; error() says so.
  bool active() const;
  // The first failure that stopped all recording (the program itself goes
  // on untouched); a failure inside one call only skips that call (see
  // on_skipped). Empty if none.
  std::string error() const;

  // Names leaves in the trace ("fc1.weight"). Call before backward.
  void NameParameters(const std::vector<std::pair<std::string, at::Tensor>>& named);

  // Backward calls seen so far, recorded or not.
  int calls_seen() const;

  // A backward call the recorder cannot follow is about to run on this
  // thread (compiled autograd runs it: no node frames, no final callback,
  // fake tensors on a cache miss). It is counted as a call and reported to
  // on_skipped with `why`; until EndUnrecordableCall, this thread's ops
  // are not looked at, let alone recorded. Calls nest.
  void BeginUnrecordableCall(const std::string& why);
  void EndUnrecordableCall();

  // A backward call compiled autograd is about to run on this thread, with
  // what it runs from (Engine::set_compiled_autograd's function's
  // arguments; the shim's wrapper passes them on). If the call is selected,
  // its graph and compiled autograd's key (read as compiled autograd reads
  // it, before it looks in its cache) are recorded, marked as run by
  // compiled autograd: no node runs eagerly, so there are no ops. Until
  // EndCompiledCall this thread's ops are not looked at (on a cache miss
  // they trace fake tensors). `task` is a torch::autograd::GraphTask.
  void BeginCompiledCall(const compat::NodePtr& root, const void* task, const std::vector<torch::autograd::Edge>& outputs);
  void EndCompiledCall();

  // Stops recording and returns what was recorded. meta.tool_version,
  // libtorch_version, time, host and values are filled; command and seed are
  // the caller's to fill.
  Trace Finish();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Records the backward calls that `fn` makes.
Trace RecordCalls(const std::function<void()>& fn, RecorderOptions options = RecorderOptions());

}  // namespace cautograd
