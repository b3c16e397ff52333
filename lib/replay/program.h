// The replay interpreter's insides, shared by Replay (replay.cc) and the
// prepared runner bench times (prepared.cc): a call compiled into a checked
// Program, and the Runner that executes one. Internal to lib/replay.
#pragma once

#include "lib/replay/replay.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/jit_type.h>
#include <ATen/record_function.h>
#include <torch/csrc/api/include/torch/version.h>

#include "lib/bridge/names.h"
#include "lib/bridge/tensor_bytes.h"
#include "lib/trace/guards.h"
#include "lib/trace/human.h"
#include "lib/trace/op_semantics.h"

namespace cautograd {
namespace replay_detail {

using Clock = std::chrono::steady_clock;

// Operators that reach outside memory (files, the terminal): never replayed.
inline const std::set<std::string> kDenied = {"aten::from_file",      "aten::warn",
                                              "prim::Print",          "aten::_print",
                                              "prim::RaiseException", "aten::_assert_async"};

inline std::string Where(int64_t call, const Op& op) {
  return "call " + std::to_string(call) + ", op " + std::to_string(op.index) + " (" + OpLabel(op) + ")";
}

// One op made ready to run: its operator, and where each schema argument
// comes from (a recorded argument, or the schema's default).
struct ReadyOp {
  const Op* op = nullptr;
  c10::optional<c10::OperatorHandle> handle;
  const c10::FunctionSchema* schema = nullptr;
  std::vector<std::optional<c10::IValue>> defaults;  // for arguments the trace left out
};

// A call compiled into a checked program.
struct Program {
  const Call* call = nullptr;
  std::vector<ReadyOp> ops;
  std::vector<int64_t> inputs;  // tensor ids taken from outside, in first-use order
  // Inputs whose recorded value is the memory as it was when the call
  // started: written before the first op. The others were first used after
  // an op wrote to memory they share; their value is checked instead, before
  // that use (which is how replay proves aliasing is reproduced).
  std::set<int64_t> written_at_start;
  std::multimap<int64_t, const Value*> before_op_values;  // op -> values to check
  std::vector<int64_t> last_use;                          // per tensor: last op that reads it, -1: none
  std::vector<bool> keep;                                 // per tensor: needed after the last op
  std::map<int64_t, const Value*> first_values;           // tensor -> value at first use
  std::multimap<int64_t, const Value*> after_op_values;   // op -> values to check
  std::vector<const Value*> end_values;
  int64_t peak_bytes = 0;
};

class Compiler {
 public:
  Compiler(const Call& call, const ReplayOptions& options, std::string* err)
      : call_(call), options_(options), err_(err) {}

  bool Compile(Program* program) {
    program->call = &call_;
    const size_t n = call_.tensors.size();
    defined_.assign(n, false);
    program->last_use.assign(n, -1);
    program->keep.assign(n, false);
    std::vector<int64_t> made_at(n, -1);
    // Where each tensor is first made by an op (not written in place).
    for (const Op& op : call_.ops) {
      std::set<int64_t> ins;
      for (const Arg& a : op.args) ForEachTensor(a, [&](int64_t id) { ins.insert(id); });
      for (const Arg& out : op.outputs)
        ForEachTensor(out, [&](int64_t id) {
          if (!ins.count(id) && made_at[size_t(id)] < 0) made_at[size_t(id)] = op.index;
        });
    }
    for (const Value& v : call_.values) {
      if (v.when == Value::When::kFirstUse) {
        program->first_values.emplace(v.tensor, &v);
      } else if (v.when == Value::When::kAfterOp) {
        // Traces from before the recorder skipped them may hold such values.
        if (!OutputsUninitialized(call_.ops[size_t(v.op)].name)) program->after_op_values.emplace(v.op, &v);
      } else {
        program->end_values.push_back(&v);
      }
    }
    for (const Op& op : call_.ops) {
      ReadyOp ready;
      ready.op = &op;
      if (!Resolve(op, &ready)) return false;
      for (size_t i = 0; i < op.args.size(); ++i) {
        bool ok = true;
        ForEachTensor(op.args[i], [&](int64_t id) {
          if (!ok || defined_[size_t(id)]) return;
          if (made_at[size_t(id)] >= 0) {
            ok = Fail(Where(call_.index, op) + ": argument " + std::to_string(i) + " uses tensor " +
                      std::to_string(id) + " before op " + std::to_string(made_at[size_t(id)]) + " makes it");
            return;
          }
          ok = AddInput(id, op, program);
        });
        if (!ok) return false;
        ForEachTensor(op.args[i], [&](int64_t id) { program->last_use[size_t(id)] = op.index; });
      }
      for (const Arg& out : op.outputs) ForEachTensor(out, [&](int64_t id) { defined_[size_t(id)] = true; });
      // What the op writes in place, per its schema's alias annotations
      // (Tensor(a!)).
      const auto& params = ready.schema->arguments();
      for (size_t i = 0; i < op.args.size() && i < params.size(); ++i) {
        if (params[i].alias_info() && params[i].alias_info()->isWrite())
          ForEachTensor(op.args[i], [&](int64_t id) { NoteWrite(id); });
      }
      program->ops.push_back(std::move(ready));
    }
    for (const Value* v : program->end_values) {
      if (!defined_[size_t(v->tensor)])
        return Fail("call " + std::to_string(call_.index) + ": final value of tensor " +
                    std::to_string(v->tensor) + " is never made by the program");
      program->keep[size_t(v->tensor)] = true;
    }
    return EstimateMemory(program);
  }

 private:
  bool Fail(const std::string& message) {
    *err_ = message;
    return false;
  }

  // Byte range [begin, end) a tensor's elements span in its storage.
  std::pair<int64_t, int64_t> Extent(int64_t id) const {
    const TensorInfo& t = call_.tensors[size_t(id)];
    int64_t elem = DtypeSize(t.dtype), last = t.offset;
    if (t.numel() == 0) return {t.offset * elem, t.offset * elem};
    for (size_t d = 0; d < t.shape.size(); ++d) last += (t.shape[d] - 1) * t.strides[d];
    return {t.offset * elem, (last + 1) * elem};
  }

  void NoteWrite(int64_t id) {
    int64_t storage = call_.tensors[size_t(id)].storage;
    if (storage >= 0) written_[storage].push_back(Extent(id));
  }

  bool WrittenBefore(int64_t id) const {
    auto it = written_.find(call_.tensors[size_t(id)].storage);
    if (it == written_.end()) return false;
    auto [begin, end] = Extent(id);
    for (const auto& [b, e] : it->second)
      if (b < end && begin < e) return true;
    return false;
  }

  bool AddInput(int64_t id, const Op& op, Program* program) {
    const TensorInfo& t = call_.tensors[size_t(id)];
    defined_[size_t(id)] = true;
    program->inputs.push_back(id);
    auto value = program->first_values.find(id);
    if (WrittenBefore(id)) {
      if (value != program->first_values.end()) program->before_op_values.emplace(op.index, value->second);
      return t.storage >= 0 || Fail(Where(call_.index, op) + ": tensor " + std::to_string(id) +
                                    " has no strided storage; replay supports strided tensors only");
    }
    program->written_at_start.insert(id);
    if (IsIntegralDtype(t.dtype) && value == program->first_values.end())
      return Fail(Where(call_.index, op) + ": tensor " + std::to_string(id) + " (" + t.dtype + " " +
                  ShapeText(t.shape) +
                  ") comes from outside the call and the trace holds no values "
                  "for it; integer and bool tensors are never invented. Record with --values ints or all");
    // A sparse input is made from its recorded dense equivalent.
    bool from_dense = (t.layout == "sparse_coo" || t.layout == "sparse_csr") && value != program->first_values.end();
    if (t.storage < 0 && !from_dense)
      return Fail(Where(call_.index, op) + ": tensor " + std::to_string(id) + " has no strided storage (" +
                  (t.layout.empty() ? std::string("no layout recorded") : t.layout) +
                  (t.layout.empty() ? "" : ", and no recorded value to make it from") +
                  "); replay makes strided inputs, and sparse ones from their values (record with --values all)");
    return true;
  }

  static std::string ShapeText(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }

  bool Resolve(const Op& op, ReadyOp* ready) {
    std::string ns = op.name.substr(0, op.name.find("::"));
    bool allowed = ns == "aten" || ns == "prim" ||
                   std::find(options_.allow_namespaces.begin(), options_.allow_namespaces.end(), ns) !=
                       options_.allow_namespaces.end();
    if (!allowed)
      return Fail(Where(call_.index, op) + ": operators in namespace '" + ns +
                  "' are not replayed; pass --allow-namespace " + ns + " if you trust this trace");
    if (kDenied.count(op.name))
      return Fail(Where(call_.index, op) + ": refused: the operator has effects outside memory");
    ready->handle = c10::Dispatcher::singleton().findOp(c10::OperatorName(op.name, op.overload));
    if (!ready->handle || !ready->handle->hasSchema())
      return Fail(Where(call_.index, op) + ": no such operator in torch " + CAUTOGRAD_BACKEND_VERSION +
                  (Foreign() ? " (the trace was recorded with torch " + options_.recorded_with + ")"
                             : std::string("; was the trace recorded with another PyTorch version?")));
    const c10::FunctionSchema& schema = ready->handle->schema();
    ready->schema = &schema;
    const auto& params = schema.arguments();
    if (Foreign() && !SameArguments(op, schema))
      return Fail(Where(call_.index, op) + ": its schema differs between torch " + options_.recorded_with +
                  ", which recorded (" + Join(op.arg_names) + "), and torch " + CAUTOGRAD_BACKEND_VERSION +
                  ", which replays (" + Join(ArgumentNames(schema)) +
                  "); replay it with a backend for torch " + options_.recorded_with);
    if (op.args.size() > params.size())
      return Fail(Where(call_.index, op) + ": " + std::to_string(op.args.size()) +
                  " arguments, the schema has " + std::to_string(params.size()));
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].type()->kind() == c10::TypeKind::StringType &&
          (params[i].name() == "filename" || params[i].name() == "path"))
        return Fail(Where(call_.index, op) + ": refused: the operator takes a file name");
      if (i < op.args.size()) {
        std::string why;
        if (!Fits(op.args[i], *params[i].real_type(), &why))
          return Fail(Where(call_.index, op) + ": argument " + std::to_string(i) + " '" + params[i].name() +
                      "': " + why);
        // A factory's size, whatever the trace says of the argument (its
        // "size" flag is the trace's to set): an op that returns a new
        // tensor, not a view, sized by an int list named "size".
        bool fresh = !schema.returns().empty() && !schema.returns()[0].alias_info();
        if (fresh && op.args[i].kind == Arg::Kind::kIntList && params[i].name() == "size") {
          // Refuse what no honest trace asks for.
          double bytes = 8;
          for (int64_t d : op.args[i].ints) bytes *= double(std::max<int64_t>(d, 0));
          if (bytes > double(options_.max_memory))
            return Fail(Where(call_.index, op) + ": asks for a tensor of " + ShapeText(op.args[i].ints) +
                        ", over --max-memory " + HumanBytes(options_.max_memory));
        }
        ready->defaults.emplace_back();
      } else if (params[i].default_value()) {
        ready->defaults.emplace_back(*params[i].default_value());
      } else {
        return Fail(Where(call_.index, op) + ": argument " + std::to_string(i) + " '" + params[i].name() +
                    "' is missing and has no default");
      }
    }
    if (op.outputs.size() > schema.returns().size())
      return Fail(Where(call_.index, op) + ": " + std::to_string(op.outputs.size()) +
                  " outputs recorded, the schema returns " + std::to_string(schema.returns().size()));
    return true;
  }

  // Whether the trace comes from another libtorch than this backend's.
  bool Foreign() const {
    return !options_.recorded_with.empty() && options_.recorded_with != CAUTOGRAD_BACKEND_VERSION;
  }

  // Whether the op was recorded against a schema with these arguments: the
  // names recorded are those of the recording libtorch's schema.
  static bool SameArguments(const Op& op, const c10::FunctionSchema& schema) {
    const auto& params = schema.arguments();
    if (op.arg_names.size() > params.size()) return false;
    for (size_t i = 0; i < op.arg_names.size(); ++i)
      if (!op.arg_names[i].empty() && op.arg_names[i] != params[i].name()) return false;
    return true;
  }

  static std::vector<std::string> ArgumentNames(const c10::FunctionSchema& schema) {
    std::vector<std::string> names;
    for (const auto& p : schema.arguments()) names.push_back(p.name());
    return names;
  }

  static std::string Join(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

  // Whether a recorded argument can be passed where the schema wants `type`.
  static bool Fits(const Arg& a, const c10::Type& type, std::string* why) {
    using K = Arg::Kind;
    if (auto* opt = type.castRaw<c10::OptionalType>()) {
      if (a.kind == K::kNone || (a.kind == K::kTensor && a.tensor < 0)) return true;
      return Fits(a, *opt->getElementType(), why);
    }
    auto want = [&](bool ok, const char* what) {
      if (!ok) *why = "recorded " + ArgText(a) + " where the schema wants " + what;
      return ok;
    };
    switch (type.kind()) {
      case c10::TypeKind::TensorType:
        return want(a.kind == K::kTensor, "a Tensor");
      case c10::TypeKind::IntType:
      case c10::TypeKind::SymIntType:
        return want(a.kind == K::kInt, "an int");
      case c10::TypeKind::FloatType:
        return want(a.kind == K::kFloat || a.kind == K::kInt, "a float");
      case c10::TypeKind::NumberType:
        return want(a.kind == K::kInt || a.kind == K::kFloat || a.kind == K::kBool, "a Scalar");
      case c10::TypeKind::BoolType:
        return want(a.kind == K::kBool, "a bool");
      case c10::TypeKind::StringType:
        return want(a.kind == K::kString, "a string");
      case c10::TypeKind::ScalarTypeType:
        return want(a.kind == K::kDtype, "a dtype");
      case c10::TypeKind::LayoutType:
        return want(a.kind == K::kLayout, "a layout");
      case c10::TypeKind::MemoryFormatType:
        return want(a.kind == K::kMemoryFormat, "a memory format");
      case c10::TypeKind::DeviceObjType:
        return want(a.kind == K::kDevice, "a device");
      case c10::TypeKind::ListType: {
        auto element = type.castRaw<c10::ListType>()->getElementType();
        switch (element->kind()) {
          case c10::TypeKind::IntType:
          case c10::TypeKind::SymIntType:
            return want(a.kind == K::kIntList, "a list of ints");
          case c10::TypeKind::FloatType:
            return want(a.kind == K::kFloatList, "a list of floats");
          case c10::TypeKind::BoolType:
            return want(a.kind == K::kBoolList, "a list of bools");
          case c10::TypeKind::TensorType:
            return want(a.kind == K::kTensorList, "a list of Tensors");
          case c10::TypeKind::OptionalType:
            return want(a.kind == K::kTensorList, "a list of optional Tensors");
          default:
            break;
        }
        break;
      }
      default:
        break;
    }
    *why = "cautograd cannot replay arguments of type " + type.str();
    return false;
  }

  // Peak bytes of live storages if every tensor is freed after its last
  // use: inputs' storages live from the start, others from the op that
  // makes them, each until the last op that reads a tensor on it.
  bool EstimateMemory(Program* program) {
    const int64_t ops = int64_t(call_.ops.size());
    std::vector<int64_t> born(call_.storages.size(), -2), dies(call_.storages.size(), -2);
    auto touch = [&](int64_t tensor, int64_t at, bool birth) {
      int64_t s = call_.tensors[size_t(tensor)].storage;
      if (s < 0) return;
      if (birth && born[size_t(s)] == -2) born[size_t(s)] = at;
      dies[size_t(s)] = std::max(dies[size_t(s)], at);
    };
    for (int64_t id : program->inputs) touch(id, -1, true);
    for (const Op& op : call_.ops) {
      for (const Arg& a : op.args) ForEachTensor(a, [&](int64_t id) { touch(id, op.index, false); });
      for (const Arg& a : op.outputs) ForEachTensor(a, [&](int64_t id) { touch(id, op.index, true); });
    }
    for (size_t id = 0; id < program->keep.size(); ++id)
      if (program->keep[id]) touch(int64_t(id), ops, false);
    std::vector<int64_t> delta(size_t(ops + 3), 0);
    for (size_t s = 0; s < call_.storages.size(); ++s) {
      if (born[s] == -2) continue;
      int64_t& born_at = delta[size_t(born[s] + 1)];
      int64_t& dies_at = delta[size_t(std::max(dies[s], born[s]) + 2)];
      born_at = SaturatingAdd(born_at, call_.storages[s].nbytes);
      dies_at = SaturatingAdd(dies_at, -call_.storages[s].nbytes);
    }
    // Saturating, in 128 bits: thousands of hostile 2^50-byte storages
    // must read as too much, never wrap around to a small or negative peak.
    __int128 live = 0;
    __int128 peak = 0;
    for (int64_t d : delta) {
      live += d;
      peak = std::max(peak, live);
    }
    program->peak_bytes = peak > INT64_MAX ? INT64_MAX : int64_t(peak);
    if (program->peak_bytes > options_.max_memory)
      return Fail("call " + std::to_string(call_.index) + " needs about " + HumanBytes(program->peak_bytes) +
                  " at its peak (from the recorded metadata), over --max-memory " +
                  HumanBytes(options_.max_memory) + "; raise --max-memory to replay it");
    return true;
  }

  const Call& call_;
  const ReplayOptions& options_;
  std::string* err_;
  std::vector<bool> defined_;
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> written_;  // storage -> byte ranges
};

// Runs a compiled program.
class Runner {
 public:
  Runner(const Program& program, const ReplayOptions& options, CallReplay* result, std::string* err)
      : p_(program), call_(*program.call), options_(options), result_(result), err_(err) {}

  // False on an error that stops the replay (*err); a divergence returns
  // true with result_->diverged set.
  bool Run(int64_t* ops_done, int64_t ops_total) {
    try {
      return RunUnguarded(ops_done, ops_total);
    } catch (const c10::Error& e) {
      return Fail("call " + std::to_string(call_.index) + ": " + FirstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return Fail("call " + std::to_string(call_.index) + ": " + FirstLine(e.what()));
    }
  }

  // For PreparedCall: the inputs as Run makes them, and one argument
  // converted as Run converts it (tensors from the inputs made).
  bool MakeInputsInto(std::vector<at::Tensor>* env) {
    env_.assign(call_.tensors.size(), at::Tensor());
    if (!MakeInputs()) return false;
    *env = env_;
    return true;
  }
  bool ConvertArg(const Arg& a, const c10::Type& type, c10::IValue* out) { return ToIValue(a, type, out); }
  static std::string IndicesProblem(const Op& op, const torch::jit::Stack& stack) {
    return CheckIndices(op, stack);
  }
  static std::string FirstLineOf(const std::string& s) { return FirstLine(s); }

 private:
  bool RunUnguarded(int64_t* ops_done, int64_t ops_total) {
    at::NoGradGuard no_grad;
    at::DisableRecordFunctionGuard no_record;  // never record our own replay
    env_.assign(call_.tensors.size(), at::Tensor());
    if (!MakeInputs()) return false;
    auto start = Clock::now();
    for (const ReadyOp& ready : p_.ops) {
      if (options_.before_op) options_.before_op(call_.index, ready.op->index);
      if (options_.check) {
        auto range = p_.before_op_values.equal_range(ready.op->index);
        for (auto it = range.first; it != range.second; ++it) {
          if (!Check(*it->second, ready.op, /*before=*/true)) return false;
          if (result_->diverged) break;
        }
        if (result_->diverged) break;
      }
      if (!RunOp(ready)) return false;
      if (result_->diverged) break;
      ++*ops_done;
      if (options_.progress && (*ops_done % 256 == 0)) options_.progress(*ops_done, ops_total);
      Free(ready);
    }
    result_->run_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    if (!result_->diverged && options_.check) {
      for (const Value* v : p_.end_values) {
        if (!Check(*v, nullptr, false)) return false;
        if (result_->diverged) break;
      }
    }
    return true;
  }

  bool Fail(const std::string& message) {
    *err_ = message;
    return false;
  }

  static bool Options(const TensorInfo& t, at::TensorOptions* options, std::string* why) {
    c10::ScalarType dtype;
    if (!DtypeFromName(t.dtype, &dtype)) {
      *why = "unknown dtype " + t.dtype;
      return false;
    }
    try {
      *options = at::TensorOptions().dtype(dtype).device(c10::Device(t.device));
    } catch (const c10::Error&) {
      *why = "unknown device '" + t.device + "'";
      return false;
    }
    return true;
  }

  // Inputs come from the recorded values where there are some, otherwise
  // from a generator seeded per storage (so one tensor's values do not
  // depend on which others exist). Tensors that shared a storage when
  // recorded are views of one storage here too.
  bool MakeInputs() {
    std::map<int64_t, at::Tensor> bases;  // storage -> flat base tensor
    for (int64_t id : p_.inputs) {
      const TensorInfo& t = call_.tensors[size_t(id)];
      if (t.storage < 0) {  // sparse, with a value (AddInput refused the rest)
        if (!MakeSparseInput(id)) return false;
        continue;
      }
      const StorageInfo& s = call_.storages[size_t(t.storage)];
      at::TensorOptions opts;
      std::string why;
      if (!Options(t, &opts, &why))
        return Fail("call " + std::to_string(call_.index) + ": tensor " + std::to_string(id) + ": " + why);
      int64_t elem = DtypeSize(t.dtype);
      try {
        auto it = bases.find(t.storage);
        if (it == bases.end() || it->second.scalar_type() != opts.dtype().toScalarType() ||
            it->second.device() != opts.device()) {
          int64_t elements = (s.nbytes + elem - 1) / elem;
          auto gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed * 1000003u + uint64_t(t.storage));
          at::Tensor base;
          if (IsIntegralDtype(t.dtype)) {
            base = at::zeros({elements}, opts);
          } else {
            base = at::randn({elements}, gen, opts.device(at::kCPU)).to(opts.device());
          }
          it = bases.insert_or_assign(t.storage, base).first;
        }
        env_[size_t(id)] = it->second.as_strided(t.shape, t.strides, t.offset);
      } catch (const c10::Error& e) {
        return Fail("call " + std::to_string(call_.index) + ": cannot make input tensor " +
                    std::to_string(id) + " (" + t.device + "): " + FirstLine(e.what_without_backtrace()));
      }
      ++result_->inputs;
      auto value = p_.first_values.find(id);
      if (!p_.written_at_start.count(id)) {
        ++result_->inputs_aliased;
      } else if (value != p_.first_values.end()) {
        if (!WriteValue(id, *value->second)) return false;
        ++result_->inputs_from_values;
      } else {
        ++result_->inputs_synthesized;
      }
    }
    return true;
  }

  static std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

  // A sparse input, from the dense equivalent its value holds.
  bool MakeSparseInput(int64_t id) {
    const TensorInfo& t = call_.tensors[size_t(id)];
    auto value = p_.first_values.find(id);
    at::TensorOptions opts;
    std::string why;
    if (value == p_.first_values.end() || !Options(t, &opts, &why))
      return Fail("call " + std::to_string(call_.index) + ": cannot make sparse input tensor " +
                  std::to_string(id) + (why.empty() ? "" : ": " + why));
    try {
      at::Tensor dense = TensorFromBytes(value->second->data, t.shape, opts.dtype().toScalarType());
      at::Tensor sparse = t.layout == "sparse_csr" ? dense.to_sparse_csr()
                          : t.sparse_dim >= 0       ? dense.to_sparse(t.sparse_dim)
                                                    : dense.to_sparse();
      env_[size_t(id)] = sparse.to(opts.device());
    } catch (const c10::Error& e) {
      return Fail("call " + std::to_string(call_.index) + ": cannot make sparse input tensor " +
                  std::to_string(id) + ": " + FirstLine(e.what_without_backtrace()));
    }
    ++result_->inputs;
    ++result_->inputs_from_values;
    return true;
  }

  // Writes a recorded value into an input. An expanded input (stride 0)
  // holds each element once however many times it repeats, so the value is
  // written through one slice of each expanded dimension.
  bool WriteValue(int64_t id, const Value& value) {
    const TensorInfo& t = call_.tensors[size_t(id)];
    c10::ScalarType dtype;
    DtypeFromName(t.dtype, &dtype);
    at::Tensor dst = env_[size_t(id)];
    at::Tensor src = TensorFromBytes(value.data, t.shape, dtype).to(dst.device());
    for (int64_t d = 0; d < dst.dim(); ++d) {
      if (dst.stride(d) == 0 && dst.size(d) > 1) {
        dst = dst.narrow(d, 0, 1);
        src = src.narrow(d, 0, 1);
      }
    }
    if (at::has_internal_overlap(dst) == at::MemOverlap::Yes)
      return Fail("call " + std::to_string(call_.index) + ": input tensor " + std::to_string(id) +
                  " overlaps itself in memory in a way replay cannot fill from its recorded value");
    dst.copy_(src);
    return true;
  }

  bool ToIValue(const Arg& a, const c10::Type& type, c10::IValue* out) {
    using K = Arg::Kind;
    if (auto* opt = type.castRaw<c10::OptionalType>()) {
      if (a.kind == K::kNone || (a.kind == K::kTensor && a.tensor < 0)) {
        *out = c10::IValue();
        return true;
      }
      return ToIValue(a, *opt->getElementType(), out);
    }
    switch (a.kind) {
      case K::kNone:
        *out = c10::IValue();
        return true;
      case K::kTensor:
        *out = a.tensor < 0 ? at::Tensor() : env_[size_t(a.tensor)];
        return true;
      case K::kTensorList: {
        if (type.castRaw<c10::ListType>()->getElementType()->kind() == c10::TypeKind::OptionalType) {
          c10::List<c10::optional<at::Tensor>> list;
          for (int64_t id : a.ints) list.push_back(id < 0 ? c10::optional<at::Tensor>() : env_[size_t(id)]);
          *out = list;
        } else {
          c10::List<at::Tensor> list;
          for (int64_t id : a.ints) list.push_back(id < 0 ? at::Tensor() : env_[size_t(id)]);
          *out = list;
        }
        return true;
      }
      case K::kInt:
        *out = type.kind() == c10::TypeKind::FloatType ? c10::IValue(double(a.i)) : c10::IValue(a.i);
        return true;
      case K::kFloat:
        *out = a.f;
        return true;
      case K::kBool:
        *out = a.b;
        return true;
      case K::kString:
        *out = a.text;
        return true;
      case K::kIntList:
        *out = a.ints;
        return true;
      case K::kFloatList:
        *out = a.floats;
        return true;
      case K::kBoolList: {
        c10::List<bool> list;
        for (bool b : a.bools) list.push_back(b);
        *out = list;
        return true;
      }
      case K::kDtype: {
        c10::ScalarType t;
        if (!DtypeFromName(a.text, &t)) return false;
        *out = int64_t(t);
        return true;
      }
      case K::kLayout: {
        c10::Layout l;
        if (!LayoutFromName(a.text, &l)) return false;
        *out = int64_t(l);
        return true;
      }
      case K::kMemoryFormat: {
        c10::MemoryFormat m;
        if (!MemoryFormatFromName(a.text, &m)) return false;
        *out = int64_t(m);
        return true;
      }
      case K::kDevice:
        *out = c10::Device(a.text);
        return true;
      case K::kList:
      case K::kOpaque:
        return false;
    }
    return false;
  }

  bool RunOp(const ReadyOp& ready) {
    const Op& op = *ready.op;
    const auto& params = ready.schema->arguments();
    torch::jit::Stack stack;
    stack.reserve(params.size());
    try {
      for (size_t i = 0; i < params.size(); ++i) {
        if (i >= op.args.size()) {
          stack.push_back(*ready.defaults[i]);
          continue;
        }
        c10::IValue v;
        if (!ToIValue(op.args[i], *params[i].real_type(), &v))
          return Fail(Where(call_.index, op) + ": argument " + std::to_string(i) + " '" + params[i].name() +
                      "' cannot be passed (" + ArgText(op.args[i]) + ")");
        stack.push_back(std::move(v));
      }
      std::string bad = CheckIndices(op, stack);
      if (!bad.empty()) return OpFailed(op, Where(call_.index, op) + ": " + bad);
      ready.handle->callBoxed(&stack);
    } catch (const c10::Error& e) {
      return OpFailed(op, Where(call_.index, op) + " failed: " + FirstLine(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return OpFailed(op, Where(call_.index, op) + " failed: " + FirstLine(e.what()));
    }
    ++result_->ops;
    for (size_t i = 0; i < op.outputs.size() && i < stack.size(); ++i) {
      if (!Bind(op, i, op.outputs[i], stack[i])) return false;
      if (result_->diverged) return true;
    }
    if (options_.check) {
      auto range = p_.after_op_values.equal_range(op.index);
      for (auto it = range.first; it != range.second; ++it) {
        if (!Check(*it->second, &op, false)) return false;
        if (result_->diverged) return true;
      }
    }
    return true;
  }

  bool OpFailed(const Op& op, const std::string& message) {
    if (options_.op_failed) options_.op_failed(call_.index, op.index);
    return Fail(message);
  }

  // Kernels that trust their index arguments: libtorch 1.13's embedding
  // backward writes out of bounds, silently, for an index past the table.
  // Other kernels that crash on bad indices are caught by running replay in
  // a child process (lib/replay/isolated.h).
  static std::string CheckIndices(const Op& op, const torch::jit::Stack& stack) {
    if (op.name != "aten::embedding_backward" && op.name != "aten::embedding_dense_backward") return "";
    if (stack.size() < 4 || !stack[1].isTensor() || !stack[2].isInt() || !stack[3].isInt()) return "";
    const at::Tensor& indices = stack[1].toTensor();
    int64_t num_weights = stack[2].toInt(), padding_idx = stack[3].toInt();
    if (indices.numel() == 0) return "";
    at::Tensor ok = ((indices >= 0) & (indices < num_weights)) | (indices == padding_idx);
    if (ok.all().item<bool>()) return "";
    return "an index is outside [0, " + std::to_string(num_weights) + ") (min " +
           std::to_string(indices.min().item<int64_t>()) + ", max " +
           std::to_string(indices.max().item<int64_t>()) + "); refused, the kernel would write out of bounds";
  }

  bool Bind(const Op& op, size_t i, const Arg& out, const c10::IValue& v) {
    if (out.kind == Arg::Kind::kTensor && out.tensor >= 0) {
      if (!v.isTensor())
        return Fail(Where(call_.index, op) + ": output " + std::to_string(i) + " is not a tensor");
      return BindTensor(op, i, out.tensor, v.toTensor());
    }
    if (out.kind == Arg::Kind::kTensorList) {
      if (!v.isTensorList())
        return Fail(Where(call_.index, op) + ": output " + std::to_string(i) + " is not a tensor list");
      auto list = v.toTensorList();
      if (list.size() != out.ints.size())
        return Diverge(op, -1, "output " + std::to_string(i),
                       "returned " + std::to_string(list.size()) + " tensors, the trace recorded " +
                           std::to_string(out.ints.size()));
      for (size_t k = 0; k < list.size(); ++k)
        if (out.ints[k] >= 0 && !BindTensor(op, i, out.ints[k], list.get(k))) return false;
    }
    return true;
  }

  bool BindTensor(const Op& op, size_t i, int64_t id, const at::Tensor& t) {
    const TensorInfo& info = call_.tensors[size_t(id)];
    std::string what = "output " + std::to_string(i);
    if (t.defined()) {
      if (t.sizes().vec() != info.shape)
        return Diverge(
            op, id, what,
            "shape " + c10::str(t.sizes()) + ", recorded " + c10::str(c10::IntArrayRef(info.shape)));
      if (DtypeName(t.scalar_type()) != info.dtype)
        return Diverge(op, id, what,
                       std::string("dtype ") + DtypeName(t.scalar_type()) + ", recorded " + info.dtype);
    }
    env_[size_t(id)] = t;
    return true;
  }

  bool Diverge(const Op& op, int64_t tensor, const std::string& what, const std::string& detail) {
    result_->diverged = true;
    Divergence& d = result_->divergence;
    d.op = op.index;
    d.op_name = OpLabel(op);
    d.node = op.node;
    d.node_type = op.node >= 0 ? call_.nodes[size_t(op.node)].type : "";
    d.tensor = tensor;
    d.what = what;
    d.detail = detail;
    return true;
  }

  Tolerance ToleranceFor(const std::string& dtype) const {
    return ResolveTolerance(dtype, options_.rtol, options_.atol);
  }

  // Compares the replayed tensor with a recorded value: the output of `op`,
  // an input of `op` (`before`), or a final value (`op` null).
  bool Check(const Value& v, const Op* op, bool before) {
    const TensorInfo& info = call_.tensors[size_t(v.tensor)];
    const at::Tensor& got = env_[size_t(v.tensor)];
    if (!got.defined())
      return Fail("call " + std::to_string(call_.index) + ": tensor " + std::to_string(v.tensor) +
                  " has a recorded value but the replay never made it");
    c10::ScalarType dtype;
    DtypeFromName(v.dtype, &dtype);
    at::Tensor want = TensorFromBytes(v.data, info.shape, dtype);
    Tolerance tol = ToleranceFor(v.dtype);
    double max_abs = 0, max_rel = 0;
    bool ok = true;
    at::Tensor g = got.to(at::kCPU);
    if (g.layout() != at::kStrided) g = g.to_dense();  // a sparse value is recorded dense
    if (g.is_complex()) {
      g = at::view_as_real(g.resolve_conj());
      want = at::view_as_real(want);
    }
    if (g.numel() > 0) {
      at::Tensor gd = g.to(at::kDouble), wd = want.to(at::kDouble);
      // NaN matches NaN, and an infinity matches itself.
      at::Tensor same = (gd == wd) | (gd.isnan() & wd.isnan());
      at::Tensor diff = at::where(same, at::zeros_like(gd), (gd - wd).abs());
      diff = at::where(diff.isnan(), at::full_like(diff, INFINITY), diff);
      at::Tensor rel = diff / wd.abs().clamp_min(1e-12);
      max_abs = diff.max().item<double>();
      max_rel = at::where(same, at::zeros_like(rel), rel).max().item<double>();
      // Where the recorded value is infinite only the same infinity
      // matches (`same`): the relative bound would otherwise be infinite too.
      ok = (same | (wd.isfinite() & (diff <= tol.atol + tol.rtol * wd.abs()))).all().item<bool>();
    }
    ++result_->compared;
    result_->worst_abs = std::max(result_->worst_abs, max_abs);
    result_->worst_rel = std::max(result_->worst_rel, max_rel);
    if (ok) return true;
    result_->diverged = true;
    Divergence& d = result_->divergence;
    d.tensor = v.tensor;
    d.max_abs = max_abs;
    d.max_rel = max_rel;
    d.tolerance = tol;
    if (op) {
      d.op = op->index;
      d.op_name = OpLabel(*op);
      d.node = op->node;
      d.node_type = op->node >= 0 ? call_.nodes[size_t(op->node)].type : "";
      d.what = (before ? "input tensor " : "output tensor ") + std::to_string(v.tensor) +
               (before ? ", which shares memory an earlier op wrote" : "");
    } else {
      d.what = "final gradient, tensor " + std::to_string(v.tensor);
      for (const Node& n : call_.nodes) {
        if (n.leaf && n.leaf->grad_after == v.tensor) {
          d.node = n.id;
          d.node_type = n.type;
          d.what = "final .grad of leaf " + (n.leaf->name.empty() ? "tensor " + std::to_string(n.leaf->tensor)
                                                                  : "'" + n.leaf->name + "'");
        }
      }
    }
    return true;
  }

  // Drops the op's arguments and outputs that nothing reads any more, so
  // memory stays near the recorded program's.
  void Free(const ReadyOp& ready) {
    auto drop = [&](int64_t id) {
      if (p_.last_use[size_t(id)] <= ready.op->index && !p_.keep[size_t(id)]) env_[size_t(id)] = at::Tensor();
    };
    for (const std::vector<Arg>* list : {&ready.op->args, &ready.op->outputs})
      for (const Arg& a : *list) ForEachTensor(a, drop);
  }

  const Program& p_;
  const Call& call_;
  const ReplayOptions& options_;
  CallReplay* result_;
  std::string* err_;
  std::vector<at::Tensor> env_;
};

}  // namespace replay_detail
}  // namespace cautograd
