// Compiled autograd's cache, simulated offline over recorded backward calls
// (docs/recompile.md). The calls go, in order, into one cache that behaves as
// PyTorch's compiled autograd (2.4+) does: a trie keyed node by node in
// execution order, each node's key made of its type and specialised state
// (scalars by value; lifted tensors' dtype, device, requires_grad and
// definedness; hooks by count and kind; its edges), and size inputs checked
// apart from the key. The result is data: per call a hit, or a miss with its
// reasons; per cache entry its size inputs. Renderers live in the CLI.
//
// Pure functions of the calls, with no libtorch: the key of a call comes from
// ComputeGuards(call), recomputed rather than read from the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/trace/trace.h"

namespace cautograd {

// What a size that changes between calls becomes.
enum class DynamicMode {
  kAuto,    // static until it changes, then dynamic for good (PyTorch's default)
  kStatic,  // never dynamic: every new size is a new cache entry
  kAll,     // dynamic from the first call
};
const char* DynamicModeName(DynamicMode mode);
bool ParseDynamicMode(const std::string& text, DynamicMode* mode);

// One backward call as the cache sees it. `call` must outlive the result.
struct CacheCall {
  std::string source;  // the trace file it came from
  const Call* call = nullptr;
};

// Where a size input (compiled autograd's sizes[index]) comes from.
struct SizeInput {
  int64_t index = 0;       // position in the call's size inputs: "sizes[index]"
  std::string where_text;  // on real keys: where it comes from, in words (SizeInputText)
  int64_t node_call = -1;  // the node's position in execution order ("NodeCall i")
  int64_t node = -1;       // node id in the call it was taken from
  std::string node_type;
  int64_t index_in_node = 0;  // compiled autograd's "size idx", counted per node
  GuardSize where;            // a lifted tensor's dimension, or an element of an op's argument
  std::string op_name;        // for argument sizes: "aten::view"
  std::string leaf;           // parameter name where the tensor is a named leaf or a leaf's .grad
};

// Why a call missed the cache. Every reason names the node (type and
// NodeCall position); the fields a kind does not use keep their defaults.
struct MissReason {
  enum class Kind {
    kCacheEmpty,  // the first call: nothing compiled yet
    kNodeType,    // at this NodeCall no cached graph has this node type (old_value: one that was there, "" if
                  // graphs ended)
    kGraphEnds,   // the graph ends after this node where the cached graphs go on (old_value: the node they
                  // have next)
    kHooks,       // the node's hooks, by kind, changed (old/new: comma lists)
    kEdges,       // the node's next edges lead elsewhere
    kTensorCount,  // the node lifts another number of tensors
    kTensor,       // a lifted tensor's `field` changed: dtype, device, requires_grad, defined, role, identity
    kScalar,       // a scalar argument of one of the node's ops changed
    kSizeCount,    // the node has another number of size inputs (a rank or a list length changed)
    kSize,         // a size input changed value
    // Only on compiled autograd's own keys (SimulateRealCache):
    kKey,          // no cached key for this node here: its key bytes differ (key_size, previous_key_sizes)
    kUnsupported,  // compiled autograd cannot run this call (old_value: its message)
  };
  Kind kind = Kind::kCacheEmpty;
  int64_t node = -1;  // node id in the missing call
  std::string node_type;
  int64_t node_call = -1;
  int64_t tensor = -1;  // tensor id in the missing call
  std::string role;     // grad_in, saved, leaf, old_grad (lifted tensors), arg (argument sizes)
  std::string field;    // kTensor: what changed
  std::string leaf;     // parameter name, where there is one
  int64_t op = -1;      // op index in the missing call
  std::string op_name;
  std::string arg;          // argument name (kScalar, argument sizes)
  int64_t dim = -1;         // dimension of the tensor, or element of the argument
  int64_t size_index = -1;  // kSize: sizes[size_index]
  int64_t size_index_in_node = -1;
  std::string old_value, new_value;
  bool now_dynamic = false;  // kSize: the size is dynamic from this call on
  std::string log;           // the line compiled autograd's verbose log prints for it
  // kKey: this node's key size now, and those of the keys cached for its
  // type at this point (as compiled autograd's log lists them).
  int64_t key_size = -1;
  std::vector<int64_t> previous_key_sizes;
  std::string where;  // kSize on real keys: where the size comes from, in words
  // kKey: a reason cautograd's recorded details give for the key change at
  // this node (a finer reason of the other kinds follows it in `reasons`).
  bool explains = false;
};

// "cache_empty", "node_type", ...: the kind as JSON and docs name it.
const char* ReasonKindName(MissReason::Kind kind);

struct CacheCallResult {
  std::string source;
  int64_t call = 0;  // index in its trace
  bool hit = false;
  int64_t entry = -1;  // the cache entry that ran it
  int64_t nodes = 0;   // executed nodes
  int64_t sizes = 0;   // size inputs
  std::vector<MissReason> reasons;
  // Compiled autograd's own words for this miss, in the order its log
  // prints them, each once.
  std::vector<std::string> log;
};

// One size input of a cache entry.
struct EntrySize {
  SizeInput input;    // as the entry's first call had it
  int64_t value = 0;  // the value compiled in while static
  bool dynamic = false;
  int64_t dynamic_since = -1;  // position in CacheSimulation::calls of the call that made it dynamic
  std::vector<int64_t> seen;   // distinct values, in order of first appearance
};

// One compiled program: a graph (a path through the trie) and, under
// --dynamic static, one tuple of sizes.
struct CacheEntry {
  int64_t id = 0;
  std::vector<int64_t> calls;  // positions in CacheSimulation::calls, in order
  int64_t compiles = 0;        // 1 + recompiles for newly dynamic sizes
  std::vector<EntrySize> sizes;
  int64_t dynamic_sizes() const;
};

struct CacheSimulation {
  DynamicMode mode = DynamicMode::kAuto;
  // "simulated": keys derived from the recorded calls (SimulateCache);
  // "compiled_autograd": compiled autograd's own keys (SimulateRealCache).
  std::string keys = "simulated";
  std::vector<CacheCallResult> calls;
  std::vector<CacheEntry> entries;

  int64_t hits() const;
  int64_t compiles() const;    // every miss compiles
  int64_t recompiles() const;  // compiles after the first call's
  double hit_rate() const;     // hits / calls; 0 for no calls
};

CacheSimulation SimulateCache(const std::vector<CacheCall>& calls, DynamicMode mode);

// How to avoid a reason, in one line (docs/recompile.md says more).
std::string ReasonHint(const MissReason& reason);

}  // namespace cautograd
