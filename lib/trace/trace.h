// The in-memory form of a cautograd trace. docs/trace-format.md is the one
// document that defines the on-disk form; this header holds its one version
// constant. Nothing here depends on libtorch, so the offline tools (show,
// diff, recompile) build and run without it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/trace/archive.h"

namespace cautograd {

// Bump on any change to the on-disk format, and add a line to the version
// history in docs/trace-format.md.
// Version 2 (the newest, what cautograd writes) is an archive with raw
// values (lib/trace/archive.h); version 1, bare JSON with base64 values, is
// still read and can still be written (`convert --to 1`).
constexpr int kTraceVersion = 2;
constexpr const char* kTraceFormatName = "cautograd-trace";
constexpr const char* kToolVersion = "0.1.0";

// What --values asks the recorder to keep. kInputs: everything a replay
// needs to start (every tensor that comes into the call) and the final
// gradients, not each op's outputs.
enum class ValuesMode { kNone, kInts, kInputs, kAll };
const char* ValuesModeName(ValuesMode mode);
bool ParseValuesMode(const std::string& text, ValuesMode* mode);

struct Meta {
  std::string tool_version;
  std::string libtorch_version;
  std::vector<std::string> command;
  std::string time;  // ISO 8601, UTC
  std::string host;
  std::optional<uint64_t> seed;
  ValuesMode values = ValuesMode::kInts;
};

// One argument or output of an op. A tagged value rather than a variant so
// the reader can build it field by field and the writer can switch on kind.
struct Arg {
  enum class Kind {
    kNone,        // an absent optional
    kTensor,      // `tensor` is a tensor id, or -1 for an undefined tensor
    kTensorList,  // `ints` holds tensor ids (-1 for undefined)
    kInt,
    kFloat,
    kBool,
    kString,
    kIntList,
    kFloatList,
    kBoolList,
    kDtype,         // `text` holds the dtype name ("float32")
    kDevice,        // `text` holds the device ("cpu", "cuda:0")
    kLayout,        // `text` holds "strided", "sparse_coo", ...
    kMemoryFormat,  // `text` holds "contiguous", "preserve", ...
    kList,          // `items`: a list of anything else
    kOpaque,        // a value the recorder could not represent; `text` says what
  };
  // Ordered to keep padding small: a recorded call holds many.
  Kind kind = Kind::kNone;
  bool b = false;
  // For ints that are sizes (the schema says SymInt / SymInt[]): compiled
  // autograd treats them as size inputs, not as part of its cache key.
  bool is_size = false;
  int64_t tensor = -1;
  int64_t i = 0;
  double f = 0;
  std::string text;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<uint8_t> bools;  // 0 or 1; std::vector<bool> is larger
  std::vector<Arg> items;

  static Arg None() { return Arg(); }
  static Arg Tensor(int64_t id) {
    Arg a;
    a.kind = Kind::kTensor;
    a.tensor = id;
    return a;
  }
  static Arg Int(int64_t v) {
    Arg a;
    a.kind = Kind::kInt;
    a.i = v;
    return a;
  }
  static Arg Float(double v) {
    Arg a;
    a.kind = Kind::kFloat;
    a.f = v;
    return a;
  }
  static Arg Bool(bool v) {
    Arg a;
    a.kind = Kind::kBool;
    a.b = v;
    return a;
  }
  static Arg Text(Kind kind, std::string v) {
    Arg a;
    a.kind = kind;
    a.text = std::move(v);
    return a;
  }
};

// Where a tensor was seen first, and what it is to the backward call. One
// tensor may play several roles (a saved tensor that is also a leaf).
enum TensorRole : uint32_t {
  kRoleRootGrad = 1u << 0,   // a gradient the call started from
  kRoleSaved = 1u << 1,      // came from outside the call into a node's ops
  kRoleLeaf = 1u << 2,       // a leaf an AccumulateGrad node feeds
  kRoleOldGrad = 1u << 3,    // a leaf's .grad before the call
  kRoleOpOutput = 1u << 4,   // produced by a recorded op
  kRoleFinalGrad = 1u << 5,  // a leaf's .grad after the call
  kRoleNodeInput = 1u << 6,  // a gradient a node received
};
std::vector<std::string> RoleNames(uint32_t roles);
bool ParseRole(const std::string& name, uint32_t* role);

struct TensorInfo {
  int64_t id = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t offset = 0;
  std::string dtype;
  std::string device;
  bool requires_grad = false;
  int64_t storage = -1;  // -1: no storage (undefined or meta tensors, other layouts)
  uint32_t roles = 0;
  std::string name;  // parameter name, where the program gave one
  // "" for a strided tensor; else its layout ("sparse_coo", "sparse_csr",
  // ...: kLayoutNames), which has no storage and no strides of its own:
  // `strides` then describes it as dense, and a value holds its dense
  // equivalent (docs/trace-format.md, "tensors").
  std::string layout;
  int64_t sparse_dim = -1;  // sparse_coo: how many leading dimensions are sparse; else -1

  int64_t numel() const;
};

struct StorageInfo {
  int64_t id = 0;
  int64_t nbytes = 0;
  std::string device;
};

// A snapshot of one tensor's elements, in row-major logical order.
struct Value {
  enum class When { kFirstUse, kAfterOp, kEnd };
  int64_t tensor = 0;
  When when = When::kFirstUse;
  int64_t op = -1;  // for kAfterOp
  std::string dtype;
  int64_t numel = 0;
  std::string data;  // raw little-endian bytes (decoded); see has_data
  // Version 2: the archive entry holding the bytes (one zstd frame where
  // `zstd`), and the CRC-32 of the raw bytes. A reader that was not asked
  // for values leaves `data` empty and `has_data` false (trace_io.h).
  std::optional<ArchiveEntry> stored;
  bool zstd = false;
  bool has_data = true;
  uint32_t crc = 0;
  // The recorder's, while the call is recorded: the id a stream writer gave
  // the bytes it took instead of `data` (lib/trace/stream.h).
  int64_t spooled = -1;

  int64_t nbytes() const;  // numel x the dtype's size
};
// "first_use", "after_op", "end": as the trace names the moment.
const char* ValueWhenName(Value::When when);

struct Hook {
  // kPostAccumulateGrad: register_post_accumulate_grad_hook, on a leaf's
  // AccumulateGrad (libtorch 2.x only).
  enum class Kind { kTensorPreHook, kRetainGrad, kPreHook, kPostHook, kPostAccumulateGrad };
  Kind kind = Kind::kPreHook;
  std::string lang;  // "cpp" or "python"
  std::string type;  // demangled dynamic type of the hook object
};
const char* HookKindName(Hook::Kind kind);
bool ParseHookKind(const std::string& name, Hook::Kind* kind);

struct Edge {
  int64_t node = -1;  // -1: no function on this edge (input did not require grad)
  int64_t input = 0;
};

struct InputMeta {
  std::vector<int64_t> shape;
  std::string dtype;
  std::string device;
};

struct LeafInfo {
  int64_t tensor = -1;  // the leaf variable
  std::vector<int64_t> shape;
  std::string dtype;
  bool requires_grad = true;
  bool grad_defined_before = false;
  int64_t grad_before = -1;  // tensor id of .grad before the call, if any
  int64_t grad_after = -1;   // tensor id of .grad after the call, if any
  std::string name;
};

struct Node {
  int64_t id = 0;
  std::string type;
  uint64_t seq = 0;
  bool seq_is_max = false;  // AccumulateGrad: UINT64_MAX, kept apart for JSON
  uint64_t topo = 0;
  std::vector<InputMeta> inputs;
  std::vector<Edge> next;
  std::vector<Hook> hooks;
  std::optional<LeafInfo> leaf;
  bool executed = false;
  int64_t exec_order = -1;        // position among executed nodes
  std::vector<int64_t> grads_in;  // tensor ids the node received
  double start_us = 0;            // relative to the call's start
  double duration_us = 0;
};

struct Op {
  int64_t index = 0;
  std::string name;      // "aten::mm"
  std::string overload;  // "" or "Tensor"
  int64_t node = -1;     // -1: the engine, between nodes
  enum class Phase { kEngine, kPreHook, kNode, kPostNode };
  Phase phase = Phase::kEngine;
  int thread = 0;
  std::vector<Arg> args;
  std::vector<std::string> arg_names;
  std::vector<Arg> outputs;
  double start_us = 0;
  double duration_us = 0;
};
const char* PhaseName(Op::Phase phase);
bool ParsePhase(const std::string& name, Op::Phase* phase);

// What compiled autograd would key its cache on for one call.
struct GuardTensor {
  int64_t node = -1;
  int64_t tensor = -1;
  std::string role;  // "grad_in", "saved", "leaf", "old_grad"
  std::string dtype;
  std::string device;
  bool requires_grad = false;
  bool defined = true;
};

struct GuardScalar {
  int64_t node = -1;
  int64_t op = -1;
  std::string arg;    // schema argument name
  std::string value;  // canonical text of the value
};

struct GuardSize {
  int64_t node = -1;
  // Either a tensor dimension (tensor >= 0) or an int argument of an op.
  int64_t tensor = -1;
  std::string role;
  std::string what;  // "size" or "stride" for tensors, the argument name for ops
  int64_t op = -1;
  int64_t dim = 0;  // dimension, or element of a list argument
  int64_t value = 0;
};

struct GuardNode {
  int64_t node = -1;
  std::string type;
  int num_hooks = 0;
  std::vector<std::string> hook_kinds;
};

struct Guards {
  std::vector<GuardNode> nodes;  // execution order
  std::vector<GuardTensor> tensors;
  std::vector<GuardScalar> scalars;
  std::vector<GuardSize> sizes;
};

// Compiled autograd's own key for one backward call (PyTorch 2.4+), from the
// walk compiled autograd makes over the graph before it looks in its cache
// (docs/trace-format.md, "compiled_autograd"). Recorded, not derivable: the
// key bytes come from each node's own compiled_args in libtorch.
struct CaSize {
  int64_t value = 0;
  // Compiled autograd keeps it static even when sizes start dynamic.
  bool forced_static = false;
  // Where it comes from: kEdge, the shape compiled autograd checks a
  // gradient against before passing it on (dimension `dim` of the input
  // metadata of the node's next edge `edge`); kState, a size the node
  // keeps itself (its `dim`-th; a saved tensor's geometry, an element count).
  enum class Origin { kState, kEdge };
  Origin origin = Origin::kState;
  int64_t edge = -1;
  int64_t dim = 0;
};
const char* CaSizeOriginName(CaSize::Origin origin);

struct CaNode {
  int64_t node = -1;  // node id in the call; -1: a GraphRoot that is not one of the call's nodes
  int64_t id = 0;     // compiled autograd's NodeCall id (differs from the position when outputs are marked first)
  std::string type;   // Node::name(), as its log prints it
  bool needed = true;
  int64_t key_size = 0;
  uint64_t key_hash = 0;  // FNV-1a 64 of the key bytes
  int64_t tensors = 0;    // tensors lifted first at this node
  int64_t scalars = 0;    // scalars lifted at this node
  int64_t hooks = 0;      // Python objects (hooks, Python Functions) lifted at this node
  std::vector<CaSize> sizes;
};

struct CompiledAutogradKey {
  enum class Ran { kNone, kEager, kCompiled };
  // kNone: not recorded (libtorch before 2.4, or a trace without it); kEager:
  // computed at the start of an eager call; kCompiled: the call ran under
  // compiled autograd and the key was read as it started.
  Ran ran = Ran::kNone;
  std::vector<CaNode> nodes;  // walk order: nodes[i] is "NodeCall i" in compiled autograd's log
  // Compiled autograd cannot run this graph: its message, and the position
  // of the node it came from (nodes holds those before it).
  std::string error;
  int64_t error_at = -1;

  bool present() const { return ran != Ran::kNone; }
  int64_t num_sizes() const;
};
const char* CaRanName(CompiledAutogradKey::Ran ran);
bool ParseCaRan(const std::string& name, CompiledAutogradKey::Ran* ran);

struct Call {
  int64_t index = 0;
  std::string api;  // "backward" or "grad"
  bool create_graph = false;
  bool keep_graph = false;
  std::vector<int64_t> roots;  // node ids the call started from
  std::vector<Node> nodes;
  std::vector<Op> ops;
  std::vector<TensorInfo> tensors;
  std::vector<StorageInfo> storages;
  std::vector<Value> values;
  Guards guards;
  CompiledAutogradKey compiled_autograd;
  double duration_us = 0;
  double start_unix_s = 0;
  // The version 2 file its values' entries are in, kept open so that values
  // not read with the trace can be read later (ReadValueBytes in trace_io.h).
  std::shared_ptr<const ByteSource> value_source;
};

// A backward call the program made, that was chosen, and that could not be
// recorded (docs/trace-format.md, "skipped"). The calls after it still are.
struct SkippedCall {
  int64_t program_call = 0;  // which backward call of its process, from 0, as --calls counts them
  int64_t process = 0;       // the process id under `record -- COMMAND`; 0 for record --model
  std::string reason;        // one line: the node and op involved, and what went wrong
  double start_unix_s = 0;
};

struct Trace {
  int version = kTraceVersion;
  Meta meta;
  std::vector<SkippedCall> skipped;  // in the order the calls started
  std::vector<Call> calls;
};

// a + b for sizes read from a trace, which may be hostile: stops at the
// largest int64 (or the smallest) instead of wrapping around, so a sum of
// huge sizes stays huge.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

// The layouts other than strided a trace may name.
extern const char* const kLayoutNames[];
bool IsKnownLayout(const std::string& layout);

// Bytes per element of a dtype name; 0 for an unknown name.
int DtypeSize(const std::string& dtype);
bool IsIntegralDtype(const std::string& dtype);  // integer types and bool

}  // namespace cautograd

namespace cautograd {
// Canonical one-line text of an argument ("3", "[2, 3]", "float32", "None"),
// used by guards, show and diff so that equal values read the same.
std::string ArgText(const Arg& arg);

// "aten::mm", "aten::sum.dim_IntList": an op as messages name it.
std::string OpLabel(const Op& op);

// Calls f(id) for every defined tensor an argument holds, in lists too.
template <typename F>
void ForEachTensor(const Arg& a, F f) {
  if (a.kind == Arg::Kind::kTensor && a.tensor >= 0) f(a.tensor);
  if (a.kind == Arg::Kind::kTensorList)
    for (int64_t id : a.ints)
      if (id >= 0) f(id);
  if (a.kind == Arg::Kind::kList)
    for (const Arg& item : a.items) ForEachTensor(item, f);
}
}  // namespace cautograd
