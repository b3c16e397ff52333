#include "lib/recompile/reason_text.h"

namespace cautograd {

namespace {

std::string TensorText(const std::string& role, int64_t tensor) {
  return role + " t" + std::to_string(tensor);
}

// Where a size input comes from: "dim 0 of saved t7 of NllLossBackward0
// (NodeCall 0)".
std::string SizeWhere(const std::string& role, int64_t tensor, const std::string& what, int64_t dim,
                      const std::string& op_name, int64_t op, const std::string& node_type, int64_t node_call,
                      const std::string& leaf) {
  std::string out = op >= 0 ? "element " + std::to_string(dim) + " of argument '" + what + "' of " + op_name +
                                  " (op " + std::to_string(op) + ")"
                            : (what == "size" ? "dim " : what + " ") + std::to_string(dim) + " of " +
                                  TensorText(role, tensor);
  return out + " in " + NodeCallText(node_type, node_call, op >= 0 ? "" : leaf);
}

}  // namespace

std::string NodeCallText(const std::string& type, int64_t node_call, const std::string& leaf) {
  return type + " (NodeCall " + std::to_string(node_call) + (leaf.empty() ? "" : ", " + leaf) + ")";
}

std::string SizeInputText(const SizeInput& s) {
  if (!s.where_text.empty()) return s.where_text;
  return SizeWhere(s.where.role, s.where.tensor, s.where.what, s.where.dim, s.op_name, s.where.op,
                   s.node_type, s.node_call, s.leaf);
}

// One reason, for a person: node, tensor or argument, what changed, old -> new.
std::string ReasonText(const MissReason& r) {
  using K = MissReason::Kind;
  const std::string node = NodeCallText(r.node_type, r.node_call, r.leaf);
  switch (r.kind) {
    case K::kCacheEmpty:
      return "the cache is empty: first compile" + (r.node_type.empty() ? "" : ", starting at " + node);
    case K::kNodeType:
      if (r.old_value.empty()) return "new autograd node " + node + ", where the cached graphs had ended";
      return "new autograd node " + node + ", where the cached graph has " + r.old_value;
    case K::kGraphEnds:
      return "the graph ends after " + node + ", where the cached graph goes on with " + r.old_value +
             " (NodeCall " + std::to_string(r.node_call + 1) + ")";
    case K::kHooks:
      return node + ": hooks " + r.old_value + " -> " + r.new_value;
    case K::kEdges:
      return node + ": next edges " + r.old_value + " -> " + r.new_value;
    case K::kTensorCount:
      return node + ": lifts " + r.old_value + " tensors -> " + r.new_value;
    case K::kTensor:
      if (r.role == "old_grad" && r.field == "defined")
        return node + ": " + TensorText(r.role, r.tensor) + " (.grad before the call) was " + r.old_value +
               ", now " + r.new_value;
      return node + ": " + TensorText(r.role, r.tensor) + " " + r.field + " " + r.old_value + " -> " +
             r.new_value;
    case K::kScalar:
      if (r.arg.empty()) return node + ": its ops' scalars [" + r.old_value + "] -> [" + r.new_value + "]";
      return node + ": " + r.op_name + " (op " + std::to_string(r.op) + ") argument '" + r.arg + "' " +
             r.old_value + " -> " + r.new_value;
    case K::kSizeCount:
      if (r.field == "rank")
        return node + ": " + TensorText(r.role, r.tensor) + " rank " + r.old_value + " -> " + r.new_value;
      return node + ": " + r.op_name + " argument '" + r.arg + "' length " + r.old_value + " -> " +
             r.new_value;
    case K::kKey: {
      std::string previous;
      for (int64_t k : r.previous_key_sizes) previous += (previous.empty() ? "" : ", ") + std::to_string(k);
      return "new key at " + node + ": key size " + std::to_string(r.key_size) +
             (previous.empty() ? ", no cached key of this type here"
                               : ", cached keys of this type here have sizes " + previous);
    }
    case K::kUnsupported:
      return "compiled autograd cannot run this call" +
             (r.node_type.empty() ? std::string() : " (at " + node + ")") + ": " + r.old_value;
    case K::kSize:
      if (!r.where.empty())
        return "sizes[" + std::to_string(r.size_index) + "] = " + r.where + ": " + r.old_value + " -> " +
               r.new_value + (r.now_dynamic ? ", now dynamic" : ", stays static");
      return "sizes[" + std::to_string(r.size_index) + "] = " +
             SizeWhere(r.role, r.tensor, r.arg.empty() ? "size" : r.arg, r.dim, r.op_name, r.op, r.node_type,
                       r.node_call, r.leaf) +
             ": " + r.old_value + " -> " + r.new_value + (r.now_dynamic ? ", now dynamic" : ", stays static");
  }
  return "";
}

}  // namespace cautograd
