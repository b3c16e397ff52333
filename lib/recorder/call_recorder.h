// One backward call being recorded: its graph (walked from the engine's
// graph task), the nodes as they run, and the tensors they touch.
// Internal to lib/recorder.
#pragma once

#include <functional>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/recorder/flat_map.h"
#include "lib/recorder/op_capture.h"
#include "lib/torch_compat/torch_compat.h"

namespace cautograd {
namespace rec {

// The stage an evaluate_function frame is in, which decides the phase of
// the ops it runs: tensor pre-hooks run before the node, output validation,
// post-hooks and gradient accumulation into the next input buffers after.
enum class Stage { kPre, kIn, kPost };

struct EvalFrame {
  int64_t node = -1;
  Stage stage = Stage::kPre;
  std::vector<int64_t> pending_ops;  // pre-hook ops, given their node once known
  // AccumulateGrad nodes the running one could be, with each leaf's .grad
  // before it ran; resolved when the node ends.
  struct Candidate {
    int64_t node;
    const c10::TensorImpl* grad;
    int64_t version;
  };
  std::vector<Candidate> candidates;
  std::vector<at::Tensor> candidate_inputs;  // the node's inputs, until resolved
};

struct ThreadFrames {
  int index = 0;  // small thread number for the trace
  std::vector<EvalFrame> evals;
};

struct CallSizes {
  size_t nodes = 0, ops = 0, args = 0, ints = 0, tensors = 0, storages = 0, values = 0, dims = 0;
};

// One backward call (one engine graph task) being recorded.
struct CallRecorder {
  const std::unordered_set<ta::Node*>* task = nullptr;
  bool graph_ready = false;
  // Finds the node a forward op created, by (sequence number, thread); set
  // by the Recorder, used for the one root the engine leaves out of the task.
  std::function<compat::NodePtr(uint64_t, uint64_t)> forward_node;
  bool selected = false;
  int64_t program_call = -1;  // which call of the process this is, from 0
  // Why this call cannot be recorded; set once, and from then on its
  // frames are not looked at and Finished reports it as skipped.
  std::string failed;
  bool done = false;      // Complete() ran (or the call failed): the call's data is final
  bool finished = false;  // the engine's final callback ran (or its graph task died without it)
  uint64_t serial = 0;    // which use of this recorder: Reuse() moves it on
  ValuesMode values = ValuesMode::kInts;
  const std::function<int64_t(std::string)>* on_value = nullptr;  // RecorderOptions::on_value, if set
  bool ca_key = false;  // also record compiled autograd's key (lib/torch_compat/ca_walk.h)
  std::mutex mu;
  Call call;
  Clock::time_point t0;

  FlatMap<const c10::TensorImpl*, int64_t, PointerHash> tensor_ids;
  std::vector<const c10::TensorImpl*> impls;  // by tensor id
  std::vector<c10::weak_intrusive_ptr<c10::TensorImpl>> held_tensors;
  FlatMap<const c10::StorageImpl*, int64_t, PointerHash> storage_ids;
  std::vector<c10::weak_intrusive_ptr<c10::StorageImpl>> held_storages;
  FlatMap<const ta::Node*, int64_t, PointerHash> node_ids;
  std::vector<ta::Node*> nodes;
  // Whether each node input's shape is known yet: node id -> first index.
  std::vector<size_t> first_input;
  std::vector<bool> shape_known;
  FlatMap<std::pair<uint64_t, uint64_t>, int64_t, PairHash> by_seq;  // (seq, thread) -> node
  std::unordered_map<uint64_t, ThreadFrames> threads;
  Deferred deferred;

  void Reserve(const CallSizes& n);

  bool WantValues(c10::ScalarType dtype) const {
    return values == ValuesMode::kAll || values == ValuesMode::kInputs ||
           (values == ValuesMode::kInts && IsIntegralDtype(DtypeName(dtype)));
  }

  double Now() const { return Micros(t0, Clock::now()); }

  void Snapshot(const at::Tensor& t, int64_t id, Value::When when, int64_t op);

  int64_t StorageId(const at::Tensor& t);

  // The id of a tensor, registering it on first sight. A weak reference
  // keeps its TensorImpl's memory from being reused for another tensor
  // during the call, so ids never collide, without touching use counts.
  int64_t Register(const at::Tensor& t, uint32_t role, bool snapshot_if_new);

  // Notes an op's argument or result, compactly (see PendingArg).
  PendingArg Note(const c10::IValue& v, const c10::Type* type, uint32_t role, bool snapshot);

  static bool NamesADtype(const c10::Type* type) {
    if (type)
      if (auto* opt = type->castRaw<c10::OptionalType>()) type = opt->getElementType().get();
    return type && type->kind() == c10::TypeKind::ScalarTypeType;
  }

  // Calls f(id) for each tensor a noted argument holds.
  template <typename F>
  void ForEachNotedTensor(const PendingArg& p, const F& f) {
    using K = PendingArg::Kind;
    if (p.kind == K::kTensor && p.i >= 0) f(p.i);
    if (p.kind == K::kTensorList)
      for (uint32_t k = 0; k < p.len; ++k)
        if (deferred.ints[p.at + k] >= 0) f(deferred.ints[p.at + k]);
    if (p.kind == K::kConverted) ForEachTensor(deferred.converted[p.at], f);
  }

  // Every frame asks, nearly always from the thread that asked last.
  ThreadFrames& Frames(uint64_t thread) {
    if (last_frames && last_thread == thread) return *last_frames;
    auto it = threads.find(thread);
    if (it == threads.end()) {
      it = threads.emplace(thread, ThreadFrames()).first;
      it->second.index = int(threads.size()) - 1;
    }
    last_thread = thread;
    last_frames = &it->second;  // elements of an unordered_map stay put
    return it->second;
  }
  uint64_t last_thread = 0;
  ThreadFrames* last_frames = nullptr;

  int64_t AddNode(ta::Node* fn);
  // At the call's first node, before it runs: compiled autograd's key walk
  // from where this call starts.
  void WalkCompiledAutogradKey(const at::RecordFunction& fn);

  // The hooks `fn` carries, into `n` (lib/recorder/hooks.cc).
  static void AddHooks(ta::Node* fn, Node* n);

  // Gives every node of the graph task an id: roots first, then
  // depth-first along next edges, so ids do not depend on where the
  // allocator put the nodes. The engine's set of nodes in the graph leaves
  // out the node it starts from; with one root that is the root itself
  // (`root`, found through the forward op that made it), with several it is
  // a GraphRoot, and the roots are the nodes no other node points to.
  void InitGraph(const std::unordered_set<ta::Node*>& in_graph, ta::Node* root);

  // Which AccumulateGrad node is starting: the engine reports them all with
  // the same name and sequence number, so match the incoming gradient's
  // metadata, and if that leaves several, see whose .grad changed at the end.
  std::vector<EvalFrame::Candidate> AccumulateCandidates(const at::Tensor& grad);

  int64_t ResolveAccumulate(const std::vector<EvalFrame::Candidate>& candidates);

  // False for a node that runs inside the running node (CopySlices runs
  // the backward of an in-place op on a view): it is part of that node.
  bool NodeStarted(const at::RecordFunction& fn, EvalFrame* eval);

  void BeginNode(int64_t id, const std::vector<at::Tensor>& inputs, EvalFrame* eval);

  void NodeEnded(EvalFrame* eval);

  // Input shapes the engine never showed us (nodes that did not run, or got
  // undefined gradients) come from the metadata itself (compat::MetadataShape).
  void FillMissingShapes();

  void Complete();

  // Ready to record another call; the tables keep their memory.
  void Reuse();

  void ClearTables();

  // Gives up on this call: its data is dropped, `why` kept. Under mu.
  void Fail(const std::string& why);

  // Where the recorder was in this call, for a message: "node 'X' (op 'Y')".
  std::string Where(const char* frame, int64_t node) const;

  int64_t exec_count_ = 0;
};

}  // namespace rec
}  // namespace cautograd
