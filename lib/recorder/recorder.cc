// The Recorder: which calls are recorded, the RecordFunction callbacks that
// feed each call's CallRecorder, and the public API (lib/recorder/recorder.h).
#include "lib/recorder/recorder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/graph_task.h>

#include "lib/recorder/call_recorder.h"
#include "lib/recorder/engine_hook.h"
#include "lib/recorder/python_hooks.h"
#include "lib/torch_compat/ca_walk.h"
#include "lib/trace/guards.h"
#include "lib/trace/meta.h"
#include "lib/trace/op_semantics.h"

namespace cautograd {

using namespace rec;  // the recorder's own internals

struct FrameContext : at::ObserverContext {
  // kNested: a node run inside the running node (part of it).
  enum class Kind { kEval, kNode, kNested, kOp, kForward };
  Kind kind = Kind::kOp;
  // An op that runs in grad mode during a backward call (a checkpoint's
  // forward run again, create_graph): the nodes its outputs point to may
  // be the roots of a backward call inside this one.
  bool note_forward = false;
  CallRecorder* call = nullptr;
  const OpInfo* info = nullptr;  // for kOp
  int64_t op = -1;
  Clock::time_point start;
};

namespace {

// The active recorder's state, if any.
std::atomic<Recorder::State*> g_state{nullptr};

// Now, as a trace's start_unix_s.
double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Recorder::State : rec::CallAnnouncer {
  RecorderOptions options;
  // Two callbacks. The light one sees only backward nodes, asks for no
  // inputs, and counts calls: ops of other scopes then build no
  // RecordFunction at all. It only needs a call's first node, so it takes
  // itself out there and the call's end puts it back: the other nodes of a
  // call that is not recorded build no RecordFunction either. (A backward
  // call on another thread that starts and ends inside that window is not
  // counted.) The heavy one sees every op with its inputs and outputs, and
  // is in only while a call that may be recorded can come. In a C++
  // program the recorder puts in its own engine (AnnouncingEngine), which
  // tells it each call's roots: the heavy callback is then in only while
  // such a call runs, and the forward pass goes unwatched. Elsewhere
  // (Python runs backward through its own engine) it is in from the end of
  // the call before, so that the forward op that makes the root is seen.
  at::CallbackHandle light = 0;
  bool light_wanted = true;  // false once every call it may record is done
  bool engine_installed = false;
  bool stopped = false;                      // Finish ran
  std::atomic<at::CallbackHandle> heavy{0};  // read without the lock by the light callback
  std::mutex mu;
  std::string error;
  bool disabled = false;
  int64_t calls_seen = 0;
  int64_t calls_recorded = 0;   // selected so far
  int64_t calls_completed = 0;  // selected and finished
  // The sizes of the last recorded call: the next is likely the same
  // shape, and reserving up front spares the growth of every array.
  CallSizes last_sizes;
  std::unordered_map<const void*, CallRecorder*> active;
  std::vector<std::unique_ptr<CallRecorder>> all_calls;
  // Replaced, never changed, so that calls share it without copying.
  std::shared_ptr<const ParameterNames> names;
  std::vector<c10::weak_intrusive_ptr<c10::TensorImpl>> named_held;
  Trace trace;
  // For each call in trace.calls, what Finish has yet to write into it.
  std::vector<Deferred> deferred_parts;

  // Nodes forward ops created, by (sequence number, forward thread). Weak:
  // the recorder must not keep a graph alive. Expired entries are swept
  // whenever the map doubles.
  std::mutex forward_mu;
  std::map<std::pair<uint64_t, uint64_t>, compat::WeakNodePtr> forward_nodes;
  size_t forward_sweep_at = 1024;

  void NoteForwardOutputs(const std::vector<c10::IValue>& outputs) {
    std::lock_guard<std::mutex> lock(forward_mu);
    for (const c10::IValue& v : outputs) {
      if (!v.isTensor()) continue;
      const at::Tensor& t = v.toTensor();
      if (!t.defined()) continue;
      compat::NodePtr fn = t.grad_fn();
      if (!fn) continue;
      forward_nodes.insert_or_assign({fn->sequence_nr(), fn->thread_id()}, compat::WeakNodePtr(fn));
    }
    if (forward_nodes.size() >= forward_sweep_at) {
      for (auto it = forward_nodes.begin(); it != forward_nodes.end();)
        it = it->second.expired() ? forward_nodes.erase(it) : std::next(it);
      forward_sweep_at = std::max<size_t>(1024, forward_nodes.size() * 2);
    }
  }

  compat::NodePtr ForwardNode(uint64_t seq, uint64_t thread) {
    std::lock_guard<std::mutex> lock(forward_mu);
    auto it = forward_nodes.find({seq, thread});
    return it == forward_nodes.end() ? compat::NodePtr() : it->second.lock();
  }

  // A call the recorder cannot record: it is left out, named in the trace
  // with why, and the calls after it are recorded. `c->mu` must not be held.
  // `frame` and `node` say where it was (an op or node name; a node id).
  void FailCall(CallRecorder* c, const char* frame, int64_t node, const std::exception& e) {
    std::lock_guard<std::mutex> call_lock(c->mu);
    std::string where = c->Where(frame, node);
    c->Fail((where.empty() ? "" : "at " + where + ": ") + OneLine(e));
  }

  // Reports a chosen call that was not recorded.
  void Skipped(int64_t program_call, const std::string& why, double start_unix_s) {
    SkippedCall s;
    s.program_call = program_call;
    s.reason = "backward call " + std::to_string(program_call) + ": " + why;
    s.start_unix_s = start_unix_s;
    if (options.on_skipped) options.on_skipped(s);
    std::lock_guard<std::mutex> lock(mu);
    if (options.keep_calls) trace.skipped.push_back(std::move(s));
  }

  void Disable(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu);
    if (disabled) return;
    disabled = true;
    g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
    error = why;
  }

  // Whether the next call to start may be recorded. Under mu.
  bool NextMaySelect() const {
    return options.calls.Selects(calls_seen) &&
           (options.calls.max_calls < 0 || calls_recorded < options.calls.max_calls);
  }

  // Put the heavy or the light callback in, or take it out. Under mu.
  void SetHeavy(bool on);
  void SetLight(bool on);

  // Whether calls announce their roots, so that the forward pass need not
  // be watched. Another engine (Python's) may have replaced ours since it
  // was installed. Under mu.
  bool Announced() const {
    return engine_installed && &ta::Engine::get_default_engine() == &rec::AnnouncingEngineInstance();
  }

  // The heavy callback is wanted while a call being recorded runs, and
  // before a call that may be recorded: where calls announce themselves,
  // from its graph task's start on; elsewhere from the end of the call
  // before, so as to see the forward pass. The light one is wanted until
  // every call that may be recorded is done, except while an announced call
  // runs (it is counted when its graph task starts). Under mu.
  void UpdateCallbacks() {
    if (disabled || stopped) {
      SetLight(false);
      SetHeavy(false);
      return;
    }
    bool want_heavy = false;
    for (const auto& [task, other] : active) want_heavy |= other->selected;
    for (const Announcement& a : announced) want_heavy |= a.selected;
    bool announcing = Announced();
    if (!announcing) want_heavy |= NextMaySelect();
    SetHeavy(want_heavy);
    SetLight(light_wanted && !(announcing && !announced.empty()));
  }

  // A call inside AnnouncingEngine::execute. It is counted, and chosen or
  // not, when the engine has made its graph task and before any node runs
  // (a call the engine refuses before that is not counted, as in Python);
  // the first frame of that graph task finds it by the task.
  struct Announcement {
    uint64_t serial = 0;
    const void* task = nullptr;    // the graph task's node set, once made
    CallRecorder* call = nullptr;  // once the task's first frame was seen
    int64_t index = -1;
    bool selected = false;
    bool finished = false;  // its Finished ran (from then on `call` may be reused)
  };
  std::vector<Announcement> announced;
  uint64_t next_serial = 1;

  Announcement* FindAnnouncement(uint64_t serial) {
    for (Announcement& a : announced)
      if (a.serial == serial) return &a;
    return nullptr;
  }

  // AnnouncingEngine::execute, before the engine runs a call; returns what
  // the other two take (0: not announced).
  uint64_t CallComing() override {
    std::lock_guard<std::mutex> lock(mu);
    if (disabled || stopped || !Announced()) return 0;
    Announcement a;
    a.serial = next_serial++;
    announced.push_back(a);  // callbacks change in TaskStarting: no node runs before it
    return a.serial;
  }

  // AnnouncingEngine::execute_with_graph_task: the graph task is made and
  // no node has run. `root` is the node the engine starts from: the root
  // itself, or a GraphRoot over several.
  void TaskStarting(uint64_t serial, const void* task, const compat::NodePtr& root) override {
    std::lock_guard<std::mutex> lock(mu);
    Announcement* a = FindAnnouncement(serial);
    if (!a || disabled || stopped) return;
    a->task = task;
    a->selected = NextMaySelect();
    a->index = calls_seen++;
    if (a->selected) ++calls_recorded;
    UpdateCallbacks();  // the light callback goes out; the heavy one comes in for a chosen call
    if (a->selected && root) {
      std::lock_guard<std::mutex> forward_lock(forward_mu);
      forward_nodes.insert_or_assign({root->sequence_nr(), root->thread_id()}, compat::WeakNodePtr(root));
    }
  }

  void CallReturned(uint64_t serial) override {
    std::lock_guard<std::mutex> lock(mu);
    if (Announcement* a = FindAnnouncement(serial)) {
      bool threw = a->call && !a->finished;
      if (threw) {
        // The call threw: the engine runs no final callback then, so
        // Finished never came.
        LetGo(a->call);
      }
      // A chosen call that recorded nothing does not use up --max-calls.
      if (a->selected && (!a->call || threw)) --calls_recorded;
      announced.erase(announced.begin() + (a - announced.data()));
    }
    UpdateCallbacks();
  }

  // The announced call a new graph task is; null for a call that was not
  // announced.
  Announcement* MatchAnnouncement(const void* task) {
    for (Announcement& a : announced)
      if (a.task == task && !a.call) return &a;
    return nullptr;
  }

  // The call a graph task belongs to. Every op of a call asks, so each
  // thread remembers its last answer until any call ends or recording stops
  // (g_calls_epoch moves on), and only then takes the lock.
  CallRecorder* CallFor(const std::unordered_set<ta::Node*>* task) {
    thread_local struct {
      const void* task = nullptr;
      CallRecorder* call = nullptr;
      uint64_t epoch = 0;
    } last;
    uint64_t epoch = g_calls_epoch.load(std::memory_order_acquire);
    if (last.task == task && last.epoch == epoch) return last.call;
    std::lock_guard<std::mutex> lock(mu);
    if (disabled) return nullptr;
    CallRecorder* c = FindOrStartCall(task);
    last = {task, c, epoch};
    return c;
  }

  // Under mu.
  CallRecorder* FindOrStartCall(const std::unordered_set<ta::Node*>* task) {
    auto it = active.find(task);
    if (it != active.end()) return it->second;
    // Calls that finished before this one began have no frame open any
    // more: one is reused for this call (its tables keep their memory), the
    // others freed, so a long run does not grow.
    std::unique_ptr<CallRecorder> call;
    for (std::unique_ptr<CallRecorder>& done : all_calls)
      if (done->finished && !call) call = std::move(done);
    all_calls.erase(std::remove_if(all_calls.begin(), all_calls.end(),
                                   [](const std::unique_ptr<CallRecorder>& c) { return !c || c->finished; }),
                    all_calls.end());
    if (call)
      call->Reuse();
    else
      call = std::make_unique<CallRecorder>();
    CallRecorder* c = call.get();
    c->task = task;
    c->t0 = Clock::now();
    c->values = options.values;
    c->on_value = options.on_value ? &options.on_value : nullptr;
    c->ca_key = options.compiled_autograd_key && compat::CaWalkAvailable();
    c->forward_node = [this](uint64_t seq, uint64_t thread) { return ForwardNode(seq, thread); };
    if (Announcement* a = MatchAnnouncement(task)) {
      a->call = c;
      c->program_call = a->index;
      c->selected = a->selected;
    } else {
      // A call that starts while the heavy callback is out cannot be
      // recorded whole; it only happens when calls overlap in time.
      c->selected = heavy.load() != 0 && NextMaySelect();
      c->program_call = calls_seen++;
      if (c->selected) ++calls_recorded;
    }
    c->call.index = c->program_call;
    active.emplace(task, c);
    all_calls.push_back(std::move(call));
    if (c->selected) {
      c->deferred.owed = true;
      c->deferred.names = names;
      c->call.api = ta::get_current_graph_task_exec_info() && !ta::get_current_graph_task_exec_info()->empty()
                        ? "grad"
                        : "backward";
      c->call.create_graph = at::GradMode::is_enabled();
      c->call.keep_graph = ta::get_current_graph_task_keep_graph();
      c->call.start_unix_s =
          UnixNow();
      c->Reserve(last_sizes);
    }
    // The engine runs final callbacks once every node of the graph task is
    // done: that is where the call ends. A call that throws runs none, but
    // its graph task dies, and with it the callback and what it holds:
    // that is where such a call ends (else a later graph task at the same
    // address would be taken for it, and its calls lost).
    auto gone = std::make_shared<TaskGone>(this, c);
    try {
      ta::Engine::get_default_engine().queue_callback([this, c, gone] { Finished(c); });
    } catch (...) {
      gone->c = nullptr;  // under mu: its end must not take it again
      throw;
    }
    return c;
  }

  // Held by a call's final callback: destroyed with its graph task.
  struct TaskGone {
    State* st;
    CallRecorder* c;
    uint64_t serial;
    TaskGone(State* s, CallRecorder* call) : st(s), c(call), serial(call->serial) {}
    ~TaskGone() {
      if (c) st->Unfinished(c, serial);
    }
  };

  // A call's graph task died without its final callback: the call threw.
  // It is not recorded (it did not complete); its recorder is let go. An
  // announced call is CallReturned's to let go.
  void Unfinished(CallRecorder* c, uint64_t serial) {
    if (g_state.load(std::memory_order_acquire) != this) return;  // recording is over
    std::lock_guard<std::mutex> lock(mu);
    if (c->serial != serial || c->finished) return;
    for (const Announcement& a : announced)
      if (a.call == c) return;
    LetGo(c);
    if (c->selected) --calls_recorded;  // as for an announced call that threw
    UpdateCallbacks();
  }

  // A call that threw is not recorded; its recorder is let go, so that the
  // next graph task (which may get the same address) is a call of its own.
  // Under mu.
  void LetGo(CallRecorder* c) {
    auto it = active.find(c->task);
    if (it != active.end() && it->second == c) active.erase(it);
    g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard<std::mutex> call_lock(c->mu);
      c->done = true;
    }
    c->finished = true;
  }

  std::shared_ptr<const ParameterNames> names_shared() const { return names; }

  // A call recorded whole at once (one compiled autograd ran): numbered
  // and handed out as Finished does.
  void Deliver(Call call) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (disabled || stopped) return;
      call.index = calls_completed++;
    }
    if (options.on_call_deferred) {
      auto whole = std::make_shared<Call>(std::move(call));
      options.on_call_deferred([whole] {
        whole->guards = ComputeGuards(*whole);
        return std::move(*whole);
      });
      return;
    }
    call.guards = ComputeGuards(call);
    if (options.on_call) options.on_call(call);
    if (options.keep_calls) {
      std::lock_guard<std::mutex> lock(mu);
      trace.calls.push_back(std::move(call));
      deferred_parts.emplace_back();
    }
  }

  void Finished(CallRecorder* c) {
    BusyGuard busy;
    // Marked last, on every way out: from then on the next call may reuse it.
    struct MarkFinished {
      State* st;
      CallRecorder* c;
      ~MarkFinished() {
        std::lock_guard<std::mutex> lock(st->mu);
        c->finished = true;
      }
    } mark{this, c};
    {
      std::lock_guard<std::mutex> lock(mu);
      active.erase(c->task);
      for (Announcement& a : announced)
        if (a.call == c) a.finished = true;
      g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
      UpdateCallbacks();
    }
    if (!c->selected) return;
    std::string failed;
    {
      std::lock_guard<std::mutex> call_lock(c->mu);
      if (c->failed.empty()) {
        try {
          c->Complete();
        } catch (const std::exception& e) {
          c->Fail("at the end of the call: " + OneLine(e));
        }
      }
      failed = c->failed;
    }
    if (!failed.empty()) {
      Skipped(c->program_call, failed, c->call.start_unix_s);
      return;
    }
    Call call = std::move(c->call);
    c->call = Call();
    Deferred deferred = std::move(c->deferred);
    c->deferred = Deferred();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (disabled) return;
      call.index = calls_completed++;
      last_sizes.nodes = call.nodes.size();
      last_sizes.ops = deferred.ops.size();
      last_sizes.args = deferred.args.size();
      last_sizes.ints = deferred.ints.size();
      last_sizes.tensors = deferred.tensors.size();
      last_sizes.storages = call.storages.size();
      last_sizes.values = call.values.size();
      last_sizes.dims = deferred.dims.size();
      // Once every call it may record is done, the light callback goes
      // too: the rest of the program runs as if the recorder were not there.
      if (options.calls.max_calls >= 0 && calls_completed >= options.calls.max_calls) {
        light_wanted = false;
        SetLight(false);
      }
    }
    // Outside the lock: on_call may ask the Recorder for its error().
    // Guards are derived from the rest of the call; a kept call gets them in
    // Finish, after the program's steps, so they cost it nothing.
    if (options.on_call_deferred) {
      auto parts = std::make_shared<std::pair<Call, Deferred>>(std::move(call), std::move(deferred));
      options.on_call_deferred([parts] {
        parts->second.WriteInto(&parts->first);
        parts->first.guards = ComputeGuards(parts->first);
        return std::move(parts->first);
      });
      return;
    }
    if (options.on_call) {
      deferred.WriteInto(&call);
      call.guards = ComputeGuards(call);
      options.on_call(call);
    }
    if (options.keep_calls) {
      std::lock_guard<std::mutex> lock(mu);
      trace.calls.push_back(std::move(call));
      deferred_parts.push_back(std::move(deferred));
    }
  }
};

namespace {

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  if (t_busy || t_in_op || t_unrecordable) return nullptr;
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  if (!st) return nullptr;
  const auto* task = ta::get_current_graph_task_nodes_in_graph();
  if (!task) {
    // A forward op: note which nodes its outputs point to, so the root of a
    // later backward call can be found. Ops outside grad mode make none.
    if (fn.seqNr() < 0 || fn.scope() != at::RecordScope::FUNCTION) return nullptr;
    auto ctx = std::make_unique<FrameContext>();
    ctx->kind = FrameContext::Kind::kForward;
    return ctx;
  }
  BusyGuard busy;
  CallRecorder* call = nullptr;
  int64_t node = -1;  // the node running, for a message
  try {
    call = st->CallFor(task);
    if (!call || !call->selected) return nullptr;
    std::lock_guard<std::mutex> lock(call->mu);
    if (call->done) return nullptr;
    ThreadFrames& frames = call->Frames(at::RecordFunction::currentThreadId());
    auto ctx = std::make_unique<FrameContext>();
    ctx->call = call;
    EvalFrame* eval = frames.evals.empty() ? nullptr : &frames.evals.back();
    if (eval) node = eval->node;

    if (fn.scope() == at::RecordScope::BACKWARD_FUNCTION) {
      ctx->kind = call->NodeStarted(fn, eval) ? FrameContext::Kind::kNode : FrameContext::Kind::kNested;
      return ctx;
    }
    if (std::strncmp(fn.name(), kEvaluatePrefix, std::strlen(kEvaluatePrefix)) == 0) {
      frames.evals.emplace_back();
      ctx->kind = FrameContext::Kind::kEval;
      return ctx;
    }
    const OpInfo* info = LookupOp(fn);
    if (!info) return nullptr;  // a user's named region: transparent
    Deferred& deferred = call->deferred;
    int64_t index = int64_t(deferred.ops.size());
    PendingOp op;
    op.info = info;
    op.thread = frames.index;
    ctx->start = Clock::now();
    op.start_us = Micros(call->t0, ctx->start);
    if (!eval) {
      op.phase = Op::Phase::kEngine;
    } else if (eval->stage == Stage::kPre) {
      op.phase = Op::Phase::kPreHook;
      eval->pending_ops.push_back(index);
    } else {
      op.phase = eval->stage == Stage::kIn ? Op::Phase::kNode : Op::Phase::kPostNode;
      op.node = eval->node;
      if (op.node < 0) eval->pending_ops.push_back(index);  // AccumulateGrad not yet resolved
    }
    const c10::FunctionSchema& schema = info->schema;
    ctx->info = info;
    auto inputs = fn.inputs();
    op.args_at = uint32_t(deferred.args.size());
    op.nargs = uint32_t(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      // real_type: the schema's `type` says int for ScalarType, Layout, MemoryFormat.
      const c10::Type* type =
          i < schema.arguments().size() ? schema.arguments()[i].real_type().get() : nullptr;
      deferred.args.push_back(call->Note(inputs[i], type, kRoleSaved, true));
    }
    // A tensor first seen as an op input came from outside the call; one
    // seen earlier keeps the roles it had (the saved role only sticks to
    // tensors that were not produced inside the call).
    auto unmark = [&](int64_t id) {
      uint32_t& roles = call->deferred.tensors[size_t(id)].roles;
      if (roles & (kRoleOpOutput | kRoleNodeInput)) roles &= ~uint32_t(kRoleSaved);
    };
    for (uint32_t k = 0; k < op.nargs; ++k) call->ForEachNotedTensor(deferred.args[op.args_at + k], unmark);
    ctx->op = index;
    ctx->note_forward = fn.seqNr() >= 0 && at::GradMode::is_enabled();
    deferred.ops.push_back(op);
    t_in_op = true;  // last: a failure above leaves no op open
    return ctx;
  } catch (const std::exception& e) {
    if (!call) {
      st->Disable(std::string("recording stopped: ") + OneLine(e));
      return nullptr;
    }
    st->FailCall(call, fn.name(), node, e);
    return nullptr;
  }
}

void OnEnd(const at::RecordFunction& fn, at::ObserverContext* raw) {
  if (!raw || t_busy) return;
  auto* ctx = static_cast<FrameContext*>(raw);
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  BusyGuard busy;
  if (ctx->kind == FrameContext::Kind::kForward) {
    if (st) st->NoteForwardOutputs(fn.outputs());
    return;
  }
  CallRecorder* call = ctx->call;
  if (ctx->kind == FrameContext::Kind::kOp) t_in_op = false;
  if (ctx->note_forward && st) st->NoteForwardOutputs(fn.outputs());
  int64_t node = -1;
  try {
    std::lock_guard<std::mutex> lock(call->mu);
    if (call->done) return;
    ThreadFrames& frames = call->Frames(at::RecordFunction::currentThreadId());
    switch (ctx->kind) {
      case FrameContext::Kind::kEval:
        if (!frames.evals.empty()) frames.evals.pop_back();
        return;
      case FrameContext::Kind::kNode:
        call->NodeEnded(frames.evals.empty() ? nullptr : &frames.evals.back());
        return;
      case FrameContext::Kind::kNested:
        return;
      case FrameContext::Kind::kOp:
      case FrameContext::Kind::kForward:
        break;
    }
    Deferred& deferred = call->deferred;
    // Note, Register and Snapshot grow other arrays, never deferred.ops.
    PendingOp& op = deferred.ops[size_t(ctx->op)];
    node = op.node;
    op.duration_us = Micros(ctx->start, Clock::now());
    const c10::FunctionSchema& schema = ctx->info->schema;
    const auto& outputs = fn.outputs();
    op.outs_at = uint32_t(deferred.args.size());
    op.nouts = uint32_t(outputs.size());
    bool snapshot = call->values == ValuesMode::kAll && !OutputsUninitialized(ctx->info->name);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const c10::Type* type = nullptr;
      if (i < schema.returns().size()) type = schema.returns()[i].real_type().get();
      PendingArg out = call->Note(outputs[i], type, kRoleOpOutput, false);
      deferred.args.push_back(out);
      if (!snapshot) continue;
      auto snap = [&](int64_t id, const at::Tensor& t) {
        if (id >= 0) call->Snapshot(t, id, Value::When::kAfterOp, ctx->op);
      };
      if (out.kind == PendingArg::Kind::kTensor && outputs[i].isTensor()) snap(out.i, outputs[i].toTensor());
      if (out.kind == PendingArg::Kind::kTensorList) {
        auto list = outputs[i].toListRef();
        for (size_t k = 0; k < out.len && k < list.size(); ++k)
          if (list[k].isTensor()) snap(deferred.ints[out.at + k], list[k].toTensor());
      }
    }
  } catch (const std::exception& e) {
    if (st) st->FailCall(call, fn.name(), node, e);
  }
}

// Counts the calls the heavy callback is not there to see.
std::unique_ptr<at::ObserverContext> OnLightStart(const at::RecordFunction&) {
  if (t_busy || t_unrecordable) return nullptr;
  Recorder::State* st = g_state.load(std::memory_order_acquire);
  if (!st || st->heavy) return nullptr;
  const auto* task = ta::get_current_graph_task_nodes_in_graph();
  if (!task) return nullptr;
  BusyGuard busy;
  try {
    st->CallFor(task);
    // Counted: the rest of this call's nodes need not call back.
    std::lock_guard<std::mutex> lock(st->mu);
    if (!st->heavy) st->SetLight(false);
  } catch (const std::exception& e) {
    st->Disable(std::string("recording stopped: ") + OneLine(e));
  }
  return nullptr;
}

}  // namespace

void Recorder::State::SetLight(bool on) {
  if (on == (light != 0)) return;
  if (on) {
    light = at::addGlobalCallback(
        at::RecordFunctionCallback(&OnLightStart).scopes({at::RecordScope::BACKWARD_FUNCTION}));
  } else {
    at::removeCallback(light);
    light = 0;
  }
}

void Recorder::State::SetHeavy(bool on) {
  if (on == (heavy.load() != 0)) return;
  if (on) {
    heavy = at::addGlobalCallback(
        at::RecordFunctionCallback(&OnStart, &OnEnd).needsInputs(true).needsOutputs(true));
  } else {
    at::removeCallback(heavy.load());
    heavy = 0;
    std::lock_guard<std::mutex> lock(forward_mu);
    forward_nodes.clear();  // only the next recorded call's forward matters
  }
}

Recorder::Recorder(RecorderOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  Recorder::State* expected = nullptr;
  if (!g_state.compare_exchange_strong(expected, state_.get())) {
    state_->disabled = true;
    state_->error = "another cautograd recorder is already active in this process";
    return;
  }
  SetCallAnnouncer(state_.get());
  std::lock_guard<std::mutex> lock(state_->mu);
  ta::Engine& current = ta::Engine::get_default_engine();
  if (!PythonInProcess() &&
      (&current == &ta::Engine::get_base_engine() || &current == &rec::AnnouncingEngineInstance())) {
    ta::set_default_engine_stub(&rec::AnnouncingEngineInstance);
    state_->engine_installed = true;
  }
  state_->UpdateCallbacks();
}

Recorder::~Recorder() { Finish(); }

bool Recorder::active() const { return g_state.load() == state_.get() && !state_->disabled; }

std::string Recorder::error() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->error;
}

void Recorder::NameParameters(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto names =
      state_->names ? std::make_shared<ParameterNames>(*state_->names) : std::make_shared<ParameterNames>();
  for (const auto& [name, t] : named) {
    if (!t.defined()) continue;
    (*names)[t.unsafeGetTensorImpl()] = name;
    // Keep the address from being reused by another tensor under this name.
    state_->named_held.push_back(c10::weak_intrusive_ptr<c10::TensorImpl>(t.getIntrusivePtr()));
  }
  state_->names = std::move(names);
}

int Recorder::calls_seen() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return int(state_->calls_seen);
}

void Recorder::BeginUnrecordableCall(const std::string& why) {
  ++t_unrecordable;
  int64_t index = -1;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->disabled || state_->stopped) return;
    bool selected = state_->NextMaySelect();
    index = state_->calls_seen++;
    if (!selected) return;
    ++state_->calls_recorded;
  }
  state_->Skipped(index, why,
                  UnixNow());
}

void Recorder::EndUnrecordableCall() {
  if (t_unrecordable > 0) --t_unrecordable;
}

namespace {
// The compiled call this thread runs, recorded at its start, delivered at its end.
thread_local std::unique_ptr<Call> t_compiled_call;
thread_local Clock::time_point t_compiled_start;
}  // namespace

void Recorder::BeginCompiledCall(const compat::NodePtr& root, const void* task_ptr,
                                 const std::vector<ta::Edge>& outputs) {
  ++t_unrecordable;
  t_compiled_call.reset();
  State* st = state_.get();
  bool selected = false;
  int64_t index = -1;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->disabled || st->stopped) return;
    selected = st->NextMaySelect();
    index = st->calls_seen++;
    if (selected) ++st->calls_recorded;
  }
  if (!selected || !root) return;
  const auto& task = *static_cast<const ta::GraphTask*>(task_ptr);
  BusyGuard busy;
  try {
    CallRecorder c;
    c.t0 = Clock::now();
    c.values = st->options.values;
    c.on_value = st->options.on_value ? &st->options.on_value : nullptr;
    c.deferred.owed = true;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      c.deferred.names = st->names_shared();
    }
    // The engine's graph task holds every node but the GraphRoot it made.
    c.InitGraph(task.nodes_in_graph_, nullptr);
    compat::CaWalkStart start;
    start.graph_root = root;
    start.exec_info = &task.exec_info_;
    start.outputs = outputs;
    start.ran = CompiledAutogradKey::Ran::kCompiled;
    {
      PythonGilScope gil;
      c.call.compiled_autograd = compat::WalkCompiledAutograd(start, [&c](const ta::Node* n) {
        const int64_t* id = c.node_ids.Find(n);
        return id ? *id : int64_t(-1);
      });
      if (!c.call.compiled_autograd.error.empty()) gil.ClearError();
    }
    c.deferred.WriteInto(&c.call);
    c.call.index = index;
    c.call.api = outputs.empty() ? "backward" : "grad";
    c.call.keep_graph = task.keep_graph_;
    c.call.start_unix_s =
        UnixNow();
    t_compiled_call = std::make_unique<Call>(std::move(c.call));
    t_compiled_start = Clock::now();
  } catch (const std::exception& e) {
    st->Skipped(index, "compiled autograd runs it, and its graph cannot be read: " + OneLine(e),
                UnixNow());
  }
}

void Recorder::EndCompiledCall() {
  if (t_unrecordable > 0) --t_unrecordable;
  std::unique_ptr<Call> call = std::move(t_compiled_call);
  if (!call) return;
  call->duration_us = Micros(t_compiled_start, Clock::now());
  state_->Deliver(std::move(*call));
}

Meta RecorderMeta(ValuesMode values) {
  // The backend's name for its libtorch (torch.__version__ of a wheel, as
  // "2.13.0+cpu"), which is how `cautograd` matches a trace to a backend.
  return NewMeta(values, CAUTOGRAD_BACKEND_VERSION);
}

Trace Recorder::Finish() {
  Recorder::State* mine = state_.get();
  if (g_state.compare_exchange_strong(mine, nullptr)) SetCallAnnouncer(nullptr);
  std::lock_guard<std::mutex> lock(state_->mu);
  g_calls_epoch.fetch_add(1, std::memory_order_acq_rel);
  state_->stopped = true;
  state_->SetHeavy(false);
  if (state_->engine_installed) {
    if (&ta::Engine::get_default_engine() == &rec::AnnouncingEngineInstance())
      ta::set_default_engine_stub(&ta::Engine::get_base_engine);
    state_->engine_installed = false;
  }
  state_->light_wanted = false;
  state_->SetLight(false);
  Trace trace = std::move(state_->trace);
  state_->trace = Trace();
  for (size_t i = 0; i < trace.calls.size() && i < state_->deferred_parts.size(); ++i)
    state_->deferred_parts[i].WriteInto(&trace.calls[i]);
  state_->deferred_parts.clear();
  if (!state_->options.on_call)
    for (Call& call : trace.calls) call.guards = ComputeGuards(call);
  trace.meta = RecorderMeta(state_->options.values);
  return trace;
}

Trace RecordCalls(const std::function<void()>& fn, RecorderOptions options) {
  Recorder recorder(std::move(options));
  fn();
  return recorder.Finish();
}

}  // namespace cautograd
