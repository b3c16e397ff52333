#include "lib/recompile/compiled_program.h"

#include <algorithm>
#include <map>
#include <set>

#include "lib/trace/guards.h"

namespace cautograd {

namespace {

std::map<int64_t, int64_t> NodeCalls(const Call& call) {
  std::map<int64_t, int64_t> position;
  std::vector<const Node*> executed = ExecutedNodes(call);
  for (size_t p = 0; p < executed.size(); ++p) position[executed[p]->id] = int64_t(p);
  return position;
}

bool IsAccumulateGrad(const Node& node) {
  return node.leaf.has_value() || node.type == "torch::autograd::AccumulateGrad";
}

class ProgramBuilder {
 public:
  ProgramBuilder(const Call& call, const CacheEntry& entry, CompiledProgram* out)
      : call_(call), entry_(entry), out_(out), node_call_(NodeCalls(call)) {}

  void Build() {
    const size_t n = call_.ops.size();
    reads_.resize(n);
    outs_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      for (const Arg& a : call_.ops[i].args) ForEachTensor(a, [&](int64_t id) { reads_[i].push_back(id); });
      for (const Arg& a : call_.ops[i].outputs) ForEachTensor(a, [&](int64_t id) { outs_[i].push_back(id); });
    }
    FindOutputs();
    MarkLive();
    Order();
    FindInputs();
    Symbols();
    Frees();
  }

 private:
  int64_t Storage(int64_t tensor) const { return call_.tensors[size_t(tensor)].storage; }

  bool Writes(size_t i, int64_t tensor) const {
    return std::find(reads_[i].begin(), reads_[i].end(), tensor) != reads_[i].end();
  }

  // What the call leaves behind: leaves' .grad, values the trace holds for
  // the end of the call, and for grad() the gradients it returns (the
  // trace does not mark them: any op output that nothing reads).
  void FindOutputs() {
    auto add = [&](int64_t tensor, const std::string& what) {
      if (tensor < 0 || output_set_.count(tensor)) return;
      output_set_.insert(tensor);
      out_->outputs.push_back({tensor, what});
    };
    for (const Node& node : call_.nodes) {
      if (!node.executed || !node.leaf || node.leaf->grad_after < 0) continue;
      add(node.leaf->grad_after,
          (node.leaf->name.empty() ? "leaf t" + std::to_string(node.leaf->tensor) : node.leaf->name) +
              ".grad");
    }
    for (const Value& v : call_.values)
      if (v.when == Value::When::kEnd) add(v.tensor, "final value");
    if (call_.api != "grad") return;
    std::set<int64_t> read_later;
    for (size_t i = call_.ops.size(); i-- > 0;) {
      for (int64_t t : outs_[i])
        if (!read_later.count(t) && !Writes(i, t)) add(t, "a gradient grad() returns");
      read_later.insert(reads_[i].begin(), reads_[i].end());
    }
  }

  // Backwards from the outputs: an op is live if a live op reads what it
  // makes, if it writes memory that is read later, an output's, or an
  // input's (a side effect the caller sees), or if it makes nothing.
  void MarkLive() {
    const size_t n = call_.ops.size();
    live_.assign(n, false);
    std::set<int64_t> live_tensors(output_set_.begin(), output_set_.end());
    std::set<int64_t> live_storages;
    for (int64_t t : output_set_) live_storages.insert(Storage(t));
    std::set<int64_t> made;
    for (size_t i = 0; i < n; ++i) {
      for (int64_t t : reads_[i])
        if (!made.count(t)) live_storages.insert(Storage(t));  // an input's memory
      made.insert(outs_[i].begin(), outs_[i].end());
    }
    for (size_t i = n; i-- > 0;) {
      bool live = outs_[i].empty();
      for (int64_t t : outs_[i]) {
        if (live_tensors.count(t)) live = true;
        if (Writes(i, t) && Storage(t) >= 0 && live_storages.count(Storage(t))) live = true;
      }
      if (!live) {
        out_->removed.push_back(int64_t(i));
        continue;
      }
      live_[i] = true;
      for (int64_t t : reads_[i]) {
        live_tensors.insert(t);
        if (Storage(t) >= 0) live_storages.insert(Storage(t));
      }
    }
    std::reverse(out_->removed.begin(), out_->removed.end());
  }

  ProgramOp::Kind KindOf(const Op& op) const {
    switch (op.phase) {
      case Op::Phase::kEngine:
        return ProgramOp::Kind::kEngine;
      case Op::Phase::kPreHook:
        return ProgramOp::Kind::kHook;
      case Op::Phase::kPostNode:
        return op.name == "aten::add" ? ProgramOp::Kind::kGradSum : ProgramOp::Kind::kPostNode;
      case Op::Phase::kNode:
        break;
    }
    return op.node >= 0 && IsAccumulateGrad(call_.nodes[size_t(op.node)]) ? ProgramOp::Kind::kAccumulate
                                                                          : ProgramOp::Kind::kNode;
  }

  // Whether op i may run after op j (j later in the recording) without
  // changing what either computes.
  bool MayPass(size_t i, size_t j) const {
    for (int64_t t : reads_[j]) {
      if (std::find(outs_[i].begin(), outs_[i].end(), t) != outs_[i].end()) return false;
      for (int64_t w : outs_[i])
        if (Writes(i, w) && Storage(w) >= 0 && Storage(w) == Storage(t)) return false;
    }
    for (int64_t w : outs_[j]) {
      if (!Writes(j, w) || Storage(w) < 0) continue;
      for (int64_t t : reads_[i])
        if (Storage(t) == Storage(w)) return false;
    }
    return true;
  }

  // Ops in recorded order, except accumulation into leaves, which goes last
  // (as compiled autograd emits it) wherever nothing later depends on it.
  void Order() {
    const size_t n = call_.ops.size();
    std::vector<bool> moved(n, false);
    for (size_t i = 0; i < n; ++i)
      moved[i] = live_[i] && KindOf(call_.ops[i]) == ProgramOp::Kind::kAccumulate;
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < n; ++i) {
        if (!moved[i]) continue;
        for (size_t j = i + 1; j < n && moved[i]; ++j)
          if (live_[j] && !moved[j] && !MayPass(i, j)) moved[i] = false;
        changed |= !moved[i];
      }
    }
    for (bool last : {false, true}) {
      for (size_t i = 0; i < n; ++i) {
        if (!live_[i] || moved[i] != last) continue;
        ProgramOp op;
        op.op = int64_t(i);
        op.kind = KindOf(call_.ops[i]);
        auto it = node_call_.find(call_.ops[i].node);
        op.node_call = it == node_call_.end() ? -1 : it->second;
        out_->ops.push_back(op);
      }
    }
  }

  void FindInputs() {
    const Guards guards = ComputeGuards(call_);
    std::set<int64_t> made;
    for (const ProgramOp& pop : out_->ops) {
      for (int64_t t : reads_[size_t(pop.op)]) {
        if (made.count(t)) continue;
        made.insert(t);
        const TensorInfo& info = call_.tensors[size_t(t)];
        ProgramInput in;
        in.tensor = t;
        in.role = "unkeyed";
        in.name = info.name;
        for (const GuardTensor& gt : guards.tensors) {
          if (gt.tensor != t) continue;
          in.role = gt.role;
          in.node_call = node_call_.at(gt.node);
          in.node_type = call_.nodes[size_t(gt.node)].type;
          const Node& node = call_.nodes[size_t(gt.node)];
          if (in.name.empty() && node.leaf && gt.role == "leaf") in.name = node.leaf->name;
          if (in.name.empty() && node.leaf && gt.role == "old_grad" && !node.leaf->name.empty())
            in.name = node.leaf->name + ".grad";
          break;
        }
        in.dtype = info.dtype;
        in.device = info.device;
        in.shape = info.shape;
        in.symbols.assign(info.shape.size(), -1);
        out_->inputs.push_back(std::move(in));
      }
      made.insert(outs_[size_t(pop.op)].begin(), outs_[size_t(pop.op)].end());
    }
  }

  void Symbols() {
    std::map<int64_t, size_t> input_of;  // tensor -> position in inputs
    for (size_t k = 0; k < out_->inputs.size(); ++k) input_of[out_->inputs[k].tensor] = k;
    std::map<int64_t, size_t> op_of;  // recorded op -> position in ops
    for (size_t k = 0; k < out_->ops.size(); ++k) op_of[out_->ops[k].op] = k;
    for (const EntrySize& s : entry_.sizes) {
      if (!s.dynamic) continue;
      const GuardSize& w = s.input.where;
      out_->size_symbols.push_back(s.input.index);
      if (w.op >= 0) {
        auto it = op_of.find(w.op);
        if (it != op_of.end()) out_->ops[it->second].symbols.push_back({w.what, w.dim, s.input.index});
        continue;
      }
      auto it = input_of.find(w.tensor);
      if (it == input_of.end()) continue;
      int64_t& symbol = out_->inputs[it->second].symbols[size_t(w.dim)];
      if (symbol < 0) symbol = s.input.index;  // a tensor lifted twice has one symbol per dimension
    }
  }

  void Frees() {
    std::map<int64_t, size_t> last;  // tensor -> position of its last use
    for (size_t k = 0; k < out_->ops.size(); ++k) {
      const size_t i = size_t(out_->ops[k].op);
      for (int64_t t : reads_[i]) last[t] = k;
      for (int64_t t : outs_[i]) last[t] = k;
    }
    for (const auto& [tensor, k] : last)
      if (!output_set_.count(tensor)) out_->ops[k].frees.push_back(tensor);
  }

  const Call& call_;
  const CacheEntry& entry_;
  CompiledProgram* out_;
  std::map<int64_t, int64_t> node_call_;
  std::vector<std::vector<int64_t>> reads_, outs_;
  std::set<int64_t> output_set_;
  std::vector<bool> live_;
};

// Matches the reference call's ops to a covered call's, argument by argument.
class Binder {
 public:
  Binder(const CompiledProgram& program, const Call& call, std::string* err)
      : p_(program),
        ref_(*program.reference),
        call_(call),
        err_(err),
        ref_map_(ref_.tensors.size(), -1),
        call_map_(call.tensors.size(), -1) {}

  bool Bind(BoundCall* out) {
    if (call_.ops.size() != ref_.ops.size())
      return Fail("it ran " + std::to_string(call_.ops.size()) + " ops, the program's call " +
                  std::to_string(ref_.ops.size()));
    const std::map<int64_t, int64_t> ref_nodes = NodeCalls(ref_), call_nodes = NodeCalls(call_);
    for (const ProgramOp& pop : p_.ops) {
      const Op& want = ref_.ops[size_t(pop.op)];
      const Op& got = call_.ops[size_t(pop.op)];
      where_ = "op " + std::to_string(pop.op) + " (" + OpLabel(want) + ")";
      auto node_call = [](const std::map<int64_t, int64_t>& m, int64_t node) {
        auto it = m.find(node);
        return it == m.end() ? int64_t(-1) : it->second;
      };
      if (got.name != want.name || got.overload != want.overload || got.phase != want.phase ||
          node_call(ref_nodes, want.node) != node_call(call_nodes, got.node))
        return Fail("it ran " + OpLabel(got) + " (" + PhaseName(got.phase) + ") there");
      if (got.args.size() != want.args.size() || got.outputs.size() != want.outputs.size())
        return Fail("another number of arguments or outputs");
      for (size_t a = 0; a < want.args.size(); ++a) {
        const std::string& name = a < want.arg_names.size() ? want.arg_names[a] : std::string();
        if (!Match(want.args[a], got.args[a], name, pop)) return false;
      }
      for (size_t a = 0; a < want.outputs.size(); ++a)
        if (!Match(want.outputs[a], got.outputs[a], "output " + std::to_string(a), pop)) return false;
    }
    out->entry = p_.entry;
    out->call = call_;
    out->call.ops.clear();
    out->call.values.clear();
    out->recorded_ops.clear();
    std::map<int64_t, int64_t> renumbered;
    for (const ProgramOp& pop : p_.ops) {
      Op op = call_.ops[size_t(pop.op)];
      op.index = int64_t(out->call.ops.size());
      renumbered[pop.op] = op.index;
      out->recorded_ops.push_back(pop.op);
      out->call.ops.push_back(std::move(op));
    }
    for (const Value& v : call_.values) {
      if (v.when != Value::When::kAfterOp) {
        out->call.values.push_back(v);
        continue;
      }
      auto it = renumbered.find(v.op);
      if (it == renumbered.end()) continue;  // a value of a dead op
      Value moved = v;
      moved.op = it->second;
      out->call.values.push_back(std::move(moved));
    }
    return true;
  }

 private:
  bool Fail(const std::string& what) {
    *err_ = "call " + std::to_string(call_.index) + " does not fit the program of cache entry " +
            std::to_string(p_.entry) + " (compiled from call " + std::to_string(ref_.index) + ")" +
            (where_.empty() ? "" : " at " + where_) + ": " + what;
    return false;
  }

  bool MapTensor(int64_t want, int64_t got, const std::string& arg) {
    if ((want < 0) != (got < 0)) return Fail("argument '" + arg + "' is defined in one call only");
    if (want < 0) return true;
    if (ref_map_[size_t(want)] < 0 && call_map_[size_t(got)] < 0) {
      ref_map_[size_t(want)] = got;
      call_map_[size_t(got)] = want;
    }
    if (ref_map_[size_t(want)] != got || call_map_[size_t(got)] != want)
      return Fail("argument '" + arg + "' is t" + std::to_string(got) + ", which plays another part than t" +
                  std::to_string(want) + " in the program");
    return true;
  }

  bool Match(const Arg& want, const Arg& got, const std::string& arg, const ProgramOp& pop) {
    using K = Arg::Kind;
    if (want.kind != got.kind)
      return Fail("argument '" + arg + "' is " + ArgText(got) + ", the program has " + ArgText(want));
    switch (want.kind) {
      case K::kTensor:
        return MapTensor(want.tensor, got.tensor, arg);
      case K::kTensorList:
        if (want.ints.size() != got.ints.size()) return Fail("argument '" + arg + "' has another length");
        for (size_t k = 0; k < want.ints.size(); ++k)
          if (!MapTensor(want.ints[k], got.ints[k], arg)) return false;
        return true;
      case K::kList:
        if (want.items.size() != got.items.size()) return Fail("argument '" + arg + "' has another length");
        for (size_t k = 0; k < want.items.size(); ++k)
          if (!Match(want.items[k], got.items[k], arg, pop)) return false;
        return true;
      case K::kInt:
      case K::kIntList: {
        if (!want.is_size) break;
        std::vector<int64_t> a = want.kind == K::kInt ? std::vector<int64_t>{want.i} : want.ints;
        std::vector<int64_t> b = got.kind == K::kInt ? std::vector<int64_t>{got.i} : got.ints;
        if (a.size() != b.size()) return Fail("argument '" + arg + "' has another length");
        for (size_t k = 0; k < a.size(); ++k) {
          bool dynamic = false;
          for (const SizeSymbol& s : pop.symbols) dynamic |= s.arg == arg && s.element == int64_t(k);
          if (!dynamic && a[k] != b[k])
            return Fail("argument '" + arg + "' element " + std::to_string(k) + " is " +
                        std::to_string(b[k]) + ", a static size " + std::to_string(a[k]) + " in the program");
        }
        return true;
      }
      default:
        break;
    }
    if (ArgText(want) != ArgText(got))
      return Fail("argument '" + arg + "' is " + ArgText(got) + ", the program has " + ArgText(want));
    return true;
  }

  const CompiledProgram& p_;
  const Call& ref_;
  const Call& call_;
  std::string* err_;
  std::vector<int64_t> ref_map_, call_map_;  // tensor ids, each way
  std::string where_;
};

}  // namespace

const char* ProgramOpKindName(ProgramOp::Kind kind) {
  switch (kind) {
    case ProgramOp::Kind::kNode:
      return "node";
    case ProgramOp::Kind::kHook:
      return "hook";
    case ProgramOp::Kind::kPostNode:
      return "post_node";
    case ProgramOp::Kind::kGradSum:
      return "grad_sum";
    case ProgramOp::Kind::kAccumulate:
      return "accumulate";
    case ProgramOp::Kind::kEngine:
      return "engine";
  }
  return "?";
}

CompiledProgram BuildProgram(const std::vector<CacheCall>& calls, const CacheSimulation& sim, int64_t entry) {
  const CacheEntry& e = sim.entries[size_t(entry)];
  const CacheCall& first = calls[size_t(e.calls.front())];
  CompiledProgram program;
  program.entry = entry;
  program.source = first.source;
  program.reference = first.call;
  program.calls = e.calls;
  ProgramBuilder(*first.call, e, &program).Build();
  return program;
}

bool BindProgram(const CompiledProgram& program, const Call& call, BoundCall* out, std::string* err) {
  return Binder(program, call, err).Bind(out);
}

bool BindCalls(const std::vector<CacheCall>& calls, const CacheSimulation& sim, std::vector<BoundCall>* out,
               std::string* err) {
  std::vector<CompiledProgram> programs;
  for (const CacheEntry& e : sim.entries) programs.push_back(BuildProgram(calls, sim, e.id));
  out->clear();
  for (size_t k = 0; k < calls.size(); ++k) {
    BoundCall bound;
    if (!BindProgram(programs[size_t(sim.calls[k].entry)], *calls[k].call, &bound, err)) {
      if (!calls[k].source.empty()) *err = calls[k].source + ": " + *err;
      return false;
    }
    out->push_back(std::move(bound));
  }
  return true;
}

}  // namespace cautograd
