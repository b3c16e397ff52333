// The straight-line program compiled autograd would produce for one cache
// entry (docs/recompile.md): lifted inputs (tensors, with size symbols for
// dynamic sizes), the ops in node order, gradient sums, accumulation into
// leaves last; dead ops removed; each intermediate freed after its last use.
//
// A program is data about the entry's first call (its op and tensor ids).
// BindProgram instantiates it for any call the entry covers: the same ops,
// with that call's tensors and that call's values for the dynamic sizes, as a
// Call that the replay interpreter can run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/recompile/cache_sim.h"
#include "lib/trace/trace.h"

namespace cautograd {

struct ProgramInput {
  int64_t tensor = -1;  // tensor id in the reference call
  // How the key lifts it (grad_in, saved, leaf, old_grad), by its first
  // lifting; "unkeyed" for a tensor only hooks or the engine read.
  std::string role;
  int64_t node_call = -1;
  std::string node_type;
  std::string name;  // parameter name, where known
  std::string dtype, device;
  std::vector<int64_t> shape;    // in the reference call
  std::vector<int64_t> symbols;  // per dimension: the sizes[] index of a dynamic size, -1 if static
};

// A dynamic size passed to an op argument: element `element` of argument
// `arg` is the symbol for sizes[size_index].
struct SizeSymbol {
  std::string arg;
  int64_t element = 0;
  int64_t size_index = 0;
};

struct ProgramOp {
  enum class Kind {
    kNode,        // inside a node
    kHook,        // a tensor pre-hook of the node
    kPostNode,    // the engine checking a node's outputs (reducing a broadcast gradient, casting)
    kGradSum,     // summing gradients that meet at one input
    kAccumulate,  // AccumulateGrad: into a leaf's .grad
    kEngine,      // outside any node
  };
  int64_t op = -1;  // index in the reference call's ops
  Kind kind = Kind::kNode;
  int64_t node_call = -1;  // -1 for engine ops
  std::vector<SizeSymbol> symbols;
  std::vector<int64_t> frees;  // tensors nothing reads after this op
};
const char* ProgramOpKindName(ProgramOp::Kind kind);

struct ProgramOutput {
  int64_t tensor = -1;
  std::string what;  // "fc1.weight.grad", "a gradient grad() returns"
};

struct CompiledProgram {
  int64_t entry = -1;
  std::string source;               // the reference call's trace file
  const Call* reference = nullptr;  // the entry's first call
  std::vector<int64_t> calls;       // the calls it ran: positions in CacheSimulation::calls
  std::vector<ProgramInput> inputs;
  std::vector<int64_t> size_symbols;  // the dynamic sizes[] indexes, ascending
  std::vector<ProgramOp> ops;         // in the order they run
  std::vector<ProgramOutput> outputs;
  std::vector<int64_t> removed;  // dead ops, by index in the reference call
};

// The program of `entry`. `calls` and `sim` as SimulateCache took and made them.
CompiledProgram BuildProgram(const std::vector<CacheCall>& calls, const CacheSimulation& sim, int64_t entry);

// A call run as its entry's program.
struct BoundCall {
  int64_t entry = -1;
  Call call;  // the program's ops, renumbered from 0, with the bound call's tensors and values
  std::vector<int64_t> recorded_ops;  // per op of `call`: its index among the recorded ops
};

// Instantiates `program` for `call`, which its entry covers: maps the
// reference call's tensors to `call`'s op by op, takes `call`'s values for
// the dynamic sizes and requires every other argument to be what the program
// compiled in. False and *err when the call does not fit, naming the op.
bool BindProgram(const CompiledProgram& program, const Call& call, BoundCall* out, std::string* err);

// Every call as the program of the entry that ran it.
bool BindCalls(const std::vector<CacheCall>& calls, const CacheSimulation& sim, std::vector<BoundCall>* out,
               std::string* err);

}  // namespace cautograd
