#include "lib/trace/guards.h"

#include <algorithm>
#include <set>

namespace cautograd {

namespace {

class GuardBuilder {
 public:
  GuardBuilder(const Call& call, Guards* guards) : call_(call), guards_(guards) {}

  void Build() {
    std::vector<std::vector<const Op*>> ops_by_node(call_.nodes.size());
    for (const Op& op : call_.ops)
      if (op.node >= 0 && op.phase == Op::Phase::kNode) ops_by_node[size_t(op.node)].push_back(&op);

    for (const Node* node : ExecutedNodes(call_)) {
      GuardNode gn;
      gn.node = node->id;
      gn.type = node->type;
      for (const Hook& h : node->hooks) gn.hook_kinds.push_back(HookKindName(h.kind));
      gn.num_hooks = int(gn.hook_kinds.size());
      guards_->nodes.push_back(std::move(gn));

      lifted_.clear();
      for (int64_t id : node->grads_in) Lift(*node, id, "grad_in");
      if (node->leaf) {
        Lift(*node, node->leaf->tensor, "leaf");
        // An undefined .grad is part of the key too: zero_grad(set_to_none)
        // followed by a defined grad is the classic recompile.
        Lift(*node, node->leaf->grad_before, "old_grad");
      }
      for (const Op* op : ops_by_node[size_t(node->id)]) {
        for (size_t i = 0; i < op->args.size(); ++i) {
          const Arg& a = op->args[i];
          const std::string& name = i < op->arg_names.size() ? op->arg_names[i] : std::string();
          CollectArg(*node, *op, name, a);
        }
      }
    }
  }

 private:
  bool IsExternal(int64_t id) const {
    if (id < 0) return false;
    uint32_t roles = call_.tensors[size_t(id)].roles;
    return (roles & (kRoleSaved | kRoleLeaf)) && !(roles & kRoleOpOutput);
  }

  void Lift(const Node& node, int64_t id, const char* role) {
    if (id >= 0 && !lifted_.insert(id).second) return;
    GuardTensor gt;
    gt.node = node.id;
    gt.tensor = id;
    gt.role = role;
    gt.defined = id >= 0;
    if (id >= 0) {
      const TensorInfo& t = call_.tensors[size_t(id)];
      gt.dtype = t.dtype;
      gt.device = t.device;
      gt.requires_grad = t.requires_grad;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        GuardSize gs;
        gs.node = node.id;
        gs.tensor = id;
        gs.role = role;
        gs.what = "size";
        gs.dim = int64_t(d);
        gs.value = t.shape[d];
        guards_->sizes.push_back(std::move(gs));
      }
    }
    guards_->tensors.push_back(std::move(gt));
  }

  void CollectArg(const Node& node, const Op& op, const std::string& name, const Arg& a) {
    using K = Arg::Kind;
    switch (a.kind) {
      case K::kTensor:
        if (IsExternal(a.tensor)) Lift(node, a.tensor, "saved");
        return;
      case K::kTensorList:
        for (int64_t id : a.ints)
          if (IsExternal(id)) Lift(node, id, "saved");
        return;
      case K::kInt:
      case K::kIntList:
        if (a.is_size) {
          std::vector<int64_t> values = a.kind == K::kInt ? std::vector<int64_t>{a.i} : a.ints;
          for (size_t k = 0; k < values.size(); ++k) {
            GuardSize gs;
            gs.node = node.id;
            gs.op = op.index;
            gs.role = "arg";
            gs.what = name;
            gs.dim = int64_t(k);
            gs.value = values[k];
            guards_->sizes.push_back(std::move(gs));
          }
          return;
        }
        break;
      case K::kList:
        for (const Arg& item : a.items) CollectArg(node, op, name, item);
        return;
      default:
        break;
    }
    GuardScalar gs;
    gs.node = node.id;
    gs.op = op.index;
    gs.arg = name;
    gs.value = ArgText(a);
    guards_->scalars.push_back(std::move(gs));
  }

  const Call& call_;
  Guards* guards_;
  std::set<int64_t> lifted_;  // per node
};

}  // namespace

std::vector<const Node*> ExecutedNodes(const Call& call) {
  std::vector<const Node*> nodes;
  for (const Node& n : call.nodes)
    if (n.executed) nodes.push_back(&n);
  std::sort(nodes.begin(), nodes.end(),
            [](const Node* a, const Node* b) { return a->exec_order < b->exec_order; });
  return nodes;
}

Guards ComputeGuards(const Call& call) {
  Guards guards;
  GuardBuilder(call, &guards).Build();
  return guards;
}

}  // namespace cautograd
