#include "lib/reduce/reduce.h"

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>

#include "lib/reduce/ddmin.h"
#include "lib/reduce/slice.h"

namespace cautograd {

int64_t Candidate::num_ops() const {
  int64_t n = 0;
  for (const auto& o : ops) n += int64_t(o.size());
  return n;
}

namespace {

std::vector<int64_t> Iota(int64_t n) {
  std::vector<int64_t> v(size_t(std::max<int64_t>(n, 0)));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

class Reducer {
 public:
  Reducer(const Trace& trace, const ReduceOptions& options, const Condition& holds, ReduceStats* stats)
      : trace_(trace), options_(options), holds_(holds), stats_(stats) {
    for (const Call& call : trace.calls) slicers_.push_back(std::make_unique<CallSlicer>(call));
  }

  // The candidate of calls `calls` (positions), each cut to ops[position].
  bool Build(const std::vector<int64_t>& calls, const std::map<int64_t, std::vector<int64_t>>& ops, Candidate* c,
             std::string* why) const {
    *c = Candidate();
    c->trace.version = trace_.version;
    c->trace.meta = trace_.meta;
    for (int64_t pos : calls) {
      Call cut;
      std::vector<int64_t> op_origin, tensor_origin;
      if (!slicers_[size_t(pos)]->Cut(ops.at(pos), &cut, &op_origin, &tensor_origin, why)) return false;
      cut.index = int64_t(c->trace.calls.size());
      c->trace.calls.push_back(std::move(cut));
      c->calls.push_back(pos);
      c->ops.push_back(std::move(op_origin));
      c->tensors.push_back(std::move(tensor_origin));
    }
    return true;
  }

  // Runs the condition on a candidate; false also when it cannot be built.
  bool Try(const std::vector<int64_t>& calls, const std::map<int64_t, std::vector<int64_t>>& ops, Candidate* c) {
    std::string why;
    if (!Build(calls, ops, c, &why)) {
      ++stats_->unsound;
      return false;
    }
    ++stats_->tried;
    const bool ok = holds_(*c);
    if (options_.progress) options_.progress(stats_->tried, ok ? c->num_ops() : best_ops_);
    if (ok) best_ops_ = c->num_ops();
    return ok;
  }

  bool Run(Candidate* result, std::string* err) {
    std::vector<int64_t> calls;
    std::map<int64_t, std::vector<int64_t>> ops;
    for (size_t pos = 0; pos < trace_.calls.size(); ++pos) {
      if (options_.target_call >= 0 && int64_t(pos) != options_.target_call) continue;
      calls.push_back(int64_t(pos));
      ops[int64_t(pos)] = Iota(int64_t(trace_.calls[pos].ops.size()));
    }
    if (calls.empty()) {
      *err = "no call " + std::to_string(options_.target_call) + " in the trace";
      return false;
    }
    for (const auto& [pos, list] : ops) stats_->ops_before += int64_t(list.size());
    best_ops_ = stats_->ops_before;
    if (!Build(calls, ops, result, err)) return false;

    // Calls first: most conditions need one.
    if (calls.size() > 1) {
      calls = DeltaDebug(calls, [&](std::vector<int64_t>* subset) {
        Candidate c;
        return Try(*subset, ops, &c);
      });
    }
    for (int64_t pos : calls) ReduceOps(calls, pos, &ops);
    return Build(calls, ops, result, err);
  }

 private:
  void ReduceOps(const std::vector<int64_t>& calls, int64_t pos, std::map<int64_t, std::vector<int64_t>>* ops) {
    const CallSlicer& slicer = *slicers_[size_t(pos)];
    std::vector<int64_t> target;
    const bool targeted = pos == options_.target_call && options_.target_op >= 0;
    if (targeted) target.push_back(options_.target_op);
    // A candidate: `subset` and the target, closed to a sound cut.
    auto closed = [&](std::vector<int64_t> subset, std::vector<int64_t>* out) {
      subset.insert(subset.end(), target.begin(), target.end());
      std::string why;
      if (!slicer.Close(&subset, &why)) return false;
      *out = std::move(subset);
      return true;
    };
    auto attempt = [&](const std::vector<int64_t>& set) {
      std::map<int64_t, std::vector<int64_t>> trial = *ops;
      trial[pos] = set;
      Candidate c;
      if (!Try(calls, trial, &c)) return false;
      *ops = std::move(trial);
      return true;
    };
    if (targeted) {
      // The op alone, with what it needs: the answer whenever the trace
      // kept the values it reads.
      std::vector<int64_t> alone;
      if (closed({}, &alone) && alone.size() < (*ops)[pos].size() && attempt(alone)) return;
      // Nothing after the op can matter to it.
      std::vector<int64_t> prefix;
      for (int64_t x : (*ops)[pos])
        if (x <= options_.target_op) prefix.push_back(x);
      std::vector<int64_t> sound;
      if (prefix.size() < (*ops)[pos].size() && closed(prefix, &sound)) attempt(sound);
    }
    auto without_target = [&](const std::vector<int64_t>& set) {
      std::vector<int64_t> items;
      for (int64_t x : set)
        if (std::find(target.begin(), target.end(), x) == target.end()) items.push_back(x);
      return items;
    };
    DeltaDebug(without_target((*ops)[pos]), [&](std::vector<int64_t>* subset) {
      std::vector<int64_t> set;
      if (!closed(*subset, &set)) {
        ++stats_->unsound;
        return false;
      }
      if (set.size() >= (*ops)[pos].size() || !attempt(set)) return false;
      *subset = without_target(set);
      return true;
    });
  }

  const Trace& trace_;
  const ReduceOptions& options_;
  const Condition& holds_;
  ReduceStats* stats_;
  std::vector<std::unique_ptr<CallSlicer>> slicers_;
  int64_t best_ops_ = 0;
};

// The tensors an op outputs, in order.
std::vector<int64_t> Outputs(const Op& op) {
  std::vector<int64_t> ids;
  for (const Arg& a : op.outputs) ForEachTensor(a, [&](int64_t id) { ids.push_back(id); });
  return ids;
}

}  // namespace

bool WholeTrace(const Trace& trace, Candidate* whole, std::string* err) {
  ReduceOptions options;
  ReduceStats stats;
  Condition never = [](const Candidate&) { return false; };
  Reducer reducer(trace, options, never, &stats);
  std::vector<int64_t> calls;
  std::map<int64_t, std::vector<int64_t>> ops;
  for (size_t pos = 0; pos < trace.calls.size(); ++pos) {
    calls.push_back(int64_t(pos));
    ops[int64_t(pos)] = Iota(int64_t(trace.calls[pos].ops.size()));
  }
  return reducer.Build(calls, ops, whole, err);
}

bool Reduce(const Trace& trace, const ReduceOptions& options, const Condition& holds, Candidate* result,
            ReduceStats* stats, std::string* err) {
  *stats = ReduceStats();
  return Reducer(trace, options, holds, stats).Run(result, err);
}

bool ExpectFrom(const Trace& other, Trace* trace, int64_t* replaced, std::string* err) {
  *replaced = 0;
  if (other.calls.size() != trace->calls.size()) {
    *err = "it has " + std::to_string(other.calls.size()) + " calls and the trace " +
           std::to_string(trace->calls.size()) + "; differs-from compares two recordings of the same program";
    return false;
  }
  for (size_t c = 0; c < trace->calls.size(); ++c) {
    Call& mine = trace->calls[c];
    const Call& theirs = other.calls[c];
    if (mine.ops.size() != theirs.ops.size()) {
      *err = "call " + std::to_string(c) + " has " + std::to_string(theirs.ops.size()) + " ops there and " +
             std::to_string(mine.ops.size()) + " here; differs-from compares two recordings of the same program";
      return false;
    }
    for (size_t x = 0; x < mine.ops.size(); ++x)
      if (OpLabel(mine.ops[x]) != OpLabel(theirs.ops[x])) {
        *err = "call " + std::to_string(c) + ", op " + std::to_string(x) + " is " + OpLabel(theirs.ops[x]) +
               " there and " + OpLabel(mine.ops[x]) + " here; differs-from compares two recordings of the same program";
        return false;
      }
    std::map<std::pair<int64_t, int64_t>, const Value*> after;  // (op, tensor) -> their value
    std::map<int64_t, const Value*> ends;                      // tensor -> their final value
    for (const Value& v : theirs.values) {
      if (v.when == Value::When::kAfterOp) after[{v.op, v.tensor}] = &v;
      if (v.when == Value::When::kEnd) ends[v.tensor] = &v;
    }
    // Their leaves' final gradients, by name.
    std::map<std::string, int64_t> their_grad;
    for (const Node& n : theirs.nodes)
      if (n.leaf && !n.leaf->name.empty()) their_grad[n.leaf->name] = n.leaf->grad_after;
    std::map<int64_t, int64_t> grad_of_mine;  // my tensor -> theirs
    for (const Node& n : mine.nodes)
      if (n.leaf && n.leaf->grad_after >= 0 && their_grad.count(n.leaf->name))
        grad_of_mine[n.leaf->grad_after] = their_grad[n.leaf->name];
    for (Value& v : mine.values) {
      const Value* from = nullptr;
      if (v.when == Value::When::kAfterOp) {
        // The same output of the same op.
        const std::vector<int64_t> ours = Outputs(mine.ops[size_t(v.op)]), outs = Outputs(theirs.ops[size_t(v.op)]);
        auto at = std::find(ours.begin(), ours.end(), v.tensor);
        if (at != ours.end() && size_t(at - ours.begin()) < outs.size()) {
          auto it = after.find({v.op, outs[size_t(at - ours.begin())]});
          if (it != after.end()) from = it->second;
        }
      } else if (v.when == Value::When::kEnd) {
        auto g = grad_of_mine.find(v.tensor);
        auto it = ends.find(g != grad_of_mine.end() ? g->second : v.tensor);
        if (it != ends.end()) from = it->second;
      }
      if (!from || from->dtype != v.dtype || from->numel != v.numel || !from->has_data) continue;
      v.data = from->data;
      v.has_data = true;
      v.stored.reset();
      v.zstd = false;
      v.spooled = -1;
      ++*replaced;
    }
  }
  return true;
}

}  // namespace cautograd
