#include "lib/replay/prepared.h"

#include "lib/replay/program.h"

namespace cautograd {

// The prepared runner reuses the interpreter's compiler and input making.
using replay_detail::Clock;
using replay_detail::Compiler;
using replay_detail::Program;
using replay_detail::ReadyOp;
using replay_detail::Runner;
using replay_detail::Where;

struct PreparedCall::Impl {
  // One op, its arguments converted once.
  struct Step {
    const Op* op = nullptr;
    c10::optional<c10::OperatorHandle> handle;
    torch::jit::Stack stack;  // the arguments; tensor slots hold None until a run fills them
    std::vector<std::pair<size_t, int64_t>> tensors;  // stack position -> tensor id
    struct List {
      size_t position = 0;
      bool optional = false;
      const std::vector<int64_t>* ids = nullptr;
    };
    std::vector<List> lists;
    std::vector<std::pair<size_t, int64_t>> outputs;  // returned position -> tensor id
    std::vector<std::pair<size_t, const std::vector<int64_t>*>> list_outputs;
    std::vector<int64_t> frees;  // tensors nothing reads after this op
    bool direct = false;         // straight to the CPU kernel
    bool check_indices = false;
  };

  const Call* call = nullptr;
  Program program;
  std::vector<Step> steps;
  std::vector<at::Tensor> inputs;                          // per tensor id: the input, or undefined
  std::vector<std::pair<at::Tensor, at::Tensor>> restore;  // input memory as bytes, its value at prepare
  std::vector<at::Tensor> env;
  torch::jit::Stack stack;
  bool first_run = true;

  bool Fail(const Step& s, const std::string& what, std::string* err) const {
    *err = Where(call->index, *s.op) + ": " + what;
    return false;
  }

  // Fills the stack of `s` for a run.
  void Load(const Step& s) {
    stack.clear();
    stack.insert(stack.end(), s.stack.begin(), s.stack.end());
    for (const auto& [position, id] : s.tensors) stack[position] = env[size_t(id)];
    for (const Step::List& l : s.lists) {
      if (l.optional) {
        c10::List<c10::optional<at::Tensor>> list;
        list.reserve(l.ids->size());
        for (int64_t id : *l.ids) list.push_back(id < 0 ? c10::optional<at::Tensor>() : env[size_t(id)]);
        stack[l.position] = std::move(list);
      } else {
        c10::List<at::Tensor> list;
        list.reserve(l.ids->size());
        for (int64_t id : *l.ids) list.push_back(id < 0 ? at::Tensor() : env[size_t(id)]);
        stack[l.position] = std::move(list);
      }
    }
  }

  void Dispatch(Step& s) {
    static const c10::DispatchKeySet kCpu(c10::DispatchKey::CPU);
    if (s.direct)
      s.handle->redispatchBoxed(kCpu, &stack);
    else
      s.handle->callBoxed(&stack);
  }

  bool Store(Step& s, std::string* err) {
    for (const auto& [position, id] : s.outputs) {
      if (position >= stack.size() || !stack[position].isTensor())
        return Fail(s, "an output is not a tensor", err);
      env[size_t(id)] = std::move(stack[position]).toTensor();
    }
    for (const auto& [position, ids] : s.list_outputs) {
      if (position >= stack.size() || !stack[position].isTensorList())
        return Fail(s, "an output is not a tensor list", err);
      auto list = stack[position].toTensorList();
      if (list.size() != ids->size()) return Fail(s, "returned a list of another length than recorded", err);
      for (size_t k = 0; k < list.size(); ++k)
        if ((*ids)[k] >= 0) env[size_t((*ids)[k])] = list.get(k);
    }
    stack.clear();
    for (int64_t id : s.frees) env[size_t(id)].reset();
    return true;
  }

  void Begin() {
    for (auto& [bytes, value] : restore) bytes.copy_(value);
    env = inputs;
  }

  // The first run checks what the timed runs then skip: indices, and that
  // the CPU kernel exists where a step goes straight to it.
  bool FirstCall(Step& s, std::string* err) {
    if (s.check_indices) {
      std::string bad = Runner::IndicesProblem(*s.op, stack);
      if (!bad.empty()) return Fail(s, bad, err);
    }
    if (s.direct) {
      torch::jit::Stack copy = stack;
      try {
        Dispatch(s);
        return true;
      } catch (const c10::Error&) {
        s.direct = false;  // no CPU kernel: dispatch as usual
        stack = std::move(copy);
      }
    }
    Dispatch(s);
    return true;
  }

  template <class Timed>
  bool RunSteps(const Timed& timed, std::string* err) {
    try {
      at::NoGradGuard no_grad;
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      at::DisableRecordFunctionGuard no_record;
      Begin();
      if (first_run) {
        for (Step& s : steps) {
          Load(s);
          if (!FirstCall(s, err) || !Store(s, err)) return false;
        }
        first_run = false;
        Begin();
      }
      timed();
      return true;
    } catch (const c10::Error& e) {
      *err = "call " + std::to_string(call->index) + ": " + Runner::FirstLineOf(e.what_without_backtrace());
    } catch (const std::exception& e) {
      *err = "call " + std::to_string(call->index) + ": " + Runner::FirstLineOf(e.what());
    }
    return false;
  }
};

PreparedCall::PreparedCall() = default;
PreparedCall::~PreparedCall() = default;
PreparedCall::PreparedCall(PreparedCall&&) noexcept = default;
PreparedCall& PreparedCall::operator=(PreparedCall&&) noexcept = default;

bool PreparedCall::Prepare(const Call& call, const ReplayOptions& options, std::string* err) {
  impl_ = std::make_unique<Impl>();
  Impl& p = *impl_;
  p.call = &call;
  try {
    if (!Compiler(call, options, err).Compile(&p.program)) return false;
    CallReplay unused;
    Runner runner(p.program, options, &unused, err);
    {
      at::NoGradGuard no_grad;
      if (!runner.MakeInputsInto(&p.inputs)) return false;
    }
    std::set<const c10::StorageImpl*> seen;
    for (int64_t id : p.program.inputs) {
      const at::Tensor& t = p.inputs[size_t(id)];
      const c10::Storage& storage = t.storage();
      if (!seen.insert(storage.unsafeGetStorageImpl()).second || storage.nbytes() == 0) continue;
      at::Tensor bytes =
          at::from_blob(storage.unsafeGetStorageImpl()->data_ptr().get(), {int64_t(storage.nbytes())},
                        at::TensorOptions().dtype(at::kByte).device(t.device()));
      p.restore.emplace_back(bytes, bytes.clone());
    }
    std::vector<bool> keep = p.program.keep;
    for (const Node& n : call.nodes)
      if (n.leaf && n.leaf->grad_after >= 0) keep[size_t(n.leaf->grad_after)] = true;
    for (const ReadyOp& ready : p.program.ops) {
      const Op& op = *ready.op;
      Impl::Step s;
      s.op = &op;
      s.handle = ready.handle;
      s.check_indices = op.name == "aten::embedding_backward" || op.name == "aten::embedding_dense_backward";
      const auto& params = ready.schema->arguments();
      bool any_tensor = false, all_cpu = true;
      auto note = [&](int64_t id) {
        const TensorInfo& t = call.tensors[size_t(id)];
        any_tensor = true;
        all_cpu = all_cpu && t.device == "cpu" && t.storage >= 0;
      };
      for (size_t i = 0; i < params.size(); ++i) {
        if (i >= op.args.size()) {
          s.stack.push_back(*ready.defaults[i]);
          continue;
        }
        const Arg& a = op.args[i];
        const c10::Type& type = *params[i].real_type();
        ForEachTensor(a, note);
        if (a.kind == Arg::Kind::kTensor && a.tensor >= 0) {
          s.tensors.emplace_back(i, a.tensor);
          s.stack.emplace_back();
        } else if (a.kind == Arg::Kind::kTensorList) {
          const c10::Type* list = &type;
          if (auto* opt = type.castRaw<c10::OptionalType>()) list = opt->getElementType().get();
          s.lists.push_back(
              {i, list->castRaw<c10::ListType>()->getElementType()->kind() == c10::TypeKind::OptionalType,
               &a.ints});
          s.stack.emplace_back();
        } else {
          c10::IValue v;
          if (!runner.ConvertArg(a, type, &v))
            return p.Fail(s,
                          "argument " + std::to_string(i) + " '" + params[i].name() + "' cannot be passed (" +
                              ArgText(a) + ")",
                          err);
          s.stack.push_back(std::move(v));
        }
      }
      s.direct = any_tensor && all_cpu;
      for (size_t i = 0; i < op.outputs.size(); ++i) {
        const Arg& out = op.outputs[i];
        if (out.kind == Arg::Kind::kTensor && out.tensor >= 0)
          s.outputs.emplace_back(i, out.tensor);
        else if (out.kind == Arg::Kind::kTensorList)
          s.list_outputs.emplace_back(i, &out.ints);
      }
      std::set<int64_t> frees;
      auto drop = [&](int64_t id) {
        if (p.program.last_use[size_t(id)] <= op.index && !keep[size_t(id)]) frees.insert(id);
      };
      for (const std::vector<Arg>* list : {&op.args, &op.outputs})
        for (const Arg& a : *list) ForEachTensor(a, drop);
      s.frees.assign(frees.begin(), frees.end());
      p.steps.push_back(std::move(s));
    }
  } catch (const c10::Error& e) {
    *err = "call " + std::to_string(call.index) + ": " + Runner::FirstLineOf(e.what_without_backtrace());
    return false;
  } catch (const std::exception& e) {
    *err = "call " + std::to_string(call.index) + ": " + Runner::FirstLineOf(e.what());
    return false;
  }
  return true;
}

bool PreparedCall::Run(double* us, std::string* err) {
  Impl& p = *impl_;
  bool ok = true;
  bool ran = p.RunSteps(
      [&] {
        auto start = Clock::now();
        for (Impl::Step& s : p.steps) {
          p.Load(s);
          p.Dispatch(s);
          if (!p.Store(s, err)) {
            ok = false;
            break;
          }
        }
        *us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      },
      err);
  return ran && ok;
}

bool PreparedCall::RunKernels(std::vector<double>* op_us, std::string* err) {
  Impl& p = *impl_;
  op_us->assign(p.steps.size(), 0);
  bool ok = true;
  bool ran = p.RunSteps(
      [&] {
        for (size_t i = 0; i < p.steps.size() && ok; ++i) {
          Impl::Step& s = p.steps[i];
          p.Load(s);
          auto start = Clock::now();
          p.Dispatch(s);
          (*op_us)[i] = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
          ok = p.Store(s, err);
        }
      },
      err);
  return ran && ok;
}

int64_t PreparedCall::ops() const { return impl_ ? int64_t(impl_->steps.size()) : 0; }

const Op& PreparedCall::op(int64_t i) const { return *impl_->steps[size_t(i)].op; }

at::Tensor PreparedCall::Value(int64_t tensor) const {
  if (!impl_ || tensor < 0 || size_t(tensor) >= impl_->env.size()) return at::Tensor();
  return impl_->env[size_t(tensor)];
}

}  // namespace cautograd
