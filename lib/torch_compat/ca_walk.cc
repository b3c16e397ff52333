#include "lib/torch_compat/ca_walk.h"

#include <algorithm>
#include <exception>
#include <type_traits>
#include <unordered_set>

#include <c10/util/Exception.h>

#if CAUTOGRAD_TORCH_AT_LEAST(2, 4)
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#endif

namespace cautograd {
namespace compat {

#if CAUTOGRAD_TORCH_AT_LEAST(2, 4)

namespace {

namespace tda = torch::dynamo::autograd;

uint64_t Fnv1a(const uint8_t* bytes, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= bytes[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// How many times each node is pointed to from the graph below `root`, as
// Engine::compute_dependencies counts.
std::unordered_map<ta::Node*, int> Dependencies(ta::Node* root) {
  std::unordered_map<ta::Node*, int> deps;
  std::unordered_set<ta::Node*> seen{root};
  std::vector<ta::Node*> stack{root};
  while (!stack.empty()) {
    ta::Node* fn = stack.back();
    stack.pop_back();
    for (const ta::Edge& e : fn->next_edges()) {
      ta::Node* next = e.function.get();
      if (!next) continue;
      ++deps[next];
      if (seen.insert(next).second) stack.push_back(next);
    }
  }
  return deps;
}

ta::edge_list OutputsFromCaptures(const std::unordered_map<ta::Node*, ta::GraphTask::ExecInfo>& exec_info) {
  std::vector<std::pair<int, ta::Edge>> found;
  for (const auto& [node, info] : exec_info) {
    if (!info.captures_) continue;
    for (const auto& capture : *info.captures_) {
      // exec_info holds raw pointers; the node is alive (the call holds it).
      NodePtr held = SharedFrom(node);
      found.emplace_back(capture.output_idx_, ta::Edge(held, uint32_t(capture.input_idx_)));
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  ta::edge_list out;
  for (auto& [index, edge] : found) out.push_back(std::move(edge));
  return out;
}

// Splits the sizes a node added past `state_end` among its next edges: each
// valid edge adds the dimensions of the input metadata it is checked against.
void AttributeEdgeSizes(const ta::Node& fn, std::vector<CaSize>* sizes, size_t state_end) {
  size_t at = state_end;
  const auto& edges = fn.next_edges();
  for (size_t k = 0; k < edges.size() && at < sizes->size(); ++k) {
    const ta::Edge& e = edges[k];
    if (!e.is_valid()) continue;
    size_t dims = e.function->input_metadata(e.input_nr).shape_as_dim_vector().size();
    for (size_t d = 0; d < dims && at < sizes->size(); ++d, ++at) {
      (*sizes)[at].origin = CaSize::Origin::kEdge;
      (*sizes)[at].edge = int64_t(k);
      (*sizes)[at].dim = int64_t(d);
    }
  }
}

std::string Message(const std::exception& e) {
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

}  // namespace

bool CaWalkAvailable() { return true; }

namespace {
// A raw pointer in some 2.x releases, an owning pointer in others.
template <typename P>
ta::Node* RawNode(const P& node) {
  if constexpr (std::is_pointer_v<P>)
    return node;
  else
    return node.get();
}
}  // namespace

ta::Node* CurrentNode() { return RawNode(ta::get_current_node()); }

CompiledAutogradKey WalkCompiledAutograd(const CaWalkStart& start,
                                         const std::function<int64_t(const ta::Node*)>& node_id) {
  CompiledAutogradKey key;
  key.ran = start.ran;
  try {
    NodePtr root = start.graph_root ? start.graph_root : MakeNode<ta::GraphRoot>(start.root_edges, start.grads);
    std::unordered_map<ta::Node*, int> deps = Dependencies(root.get());
    std::unordered_map<ta::Node*, int> visited;
    const auto* exec_info = start.exec_info && !start.exec_info->empty() ? start.exec_info : nullptr;
    ta::edge_list outputs = start.outputs;
    if (start.outputs_from_exec_info && exec_info) outputs = OutputsFromCaptures(*exec_info);

    // Sizes go in as dynamic: any that comes out static, a node asked for.
    tda::AutogradCompilerCall call(tda::SizeInput::DYNAMIC);
    for (size_t i = 0; i < outputs.size(); ++i)
      call.node_calls.lookup(outputs[i].function).mark_output(int(outputs[i].input_nr), int(i));

    std::vector<NodePtr> worklist{root};
    while (!worklist.empty()) {
      NodePtr fn = std::move(worklist.back());
      worklist.pop_back();
      tda::NodeCall& nc = call.node_calls.lookup(fn);
      CaNode node;
      node.node = node_id(fn.get());
      node.id = int64_t(nc.id);
      node.type = fn->name();
      const size_t sizes_before = call.all_size_inputs.size();
      const size_t tensors_before = call.tensor_args.inputs.size();
      const size_t scalars_before = call.lifted_ivalue_args.args.size();
      const size_t hooks_before = call.hooks.size();
      size_t state_end = sizes_before;
      try {
        tda::CompiledNodeArgs args(call, nc);
        args.collect(nc);
        node.needed = nc.needed;
        if (args.cond(nc.needed)) {
          fn->compiled_args(args);
          state_end = call.all_size_inputs.size();
          args.collect(fn->next_edges());
        }
        tda::CacheKey k = args.key();
        node.key_size = int64_t(k.key_size);
        node.key_hash = Fnv1a(k.key, k.key_size);
      } catch (const std::exception& e) {
        key.error = Message(e);
        key.error_at = int64_t(key.nodes.size());
        return key;
      }
      for (size_t i = sizes_before; i < call.all_size_inputs.size(); ++i) {
        CaSize size;
        size.value = call.all_size_inputs[i].value;
        size.forced_static = call.all_size_inputs[i].dyn_type == tda::SizeInput::STATIC;
        size.dim = int64_t(i - sizes_before);
        node.sizes.push_back(size);
      }
      AttributeEdgeSizes(*fn, &node.sizes, state_end - sizes_before);
      node.tensors = int64_t(call.tensor_args.inputs.size() - tensors_before);
      node.scalars = int64_t(call.lifted_ivalue_args.args.size() - scalars_before);
      node.hooks = int64_t(call.hooks.size() - hooks_before);
      key.nodes.push_back(std::move(node));

      for (const ta::Edge& e : fn->next_edges()) {
        if (!e.is_valid()) continue;
        if (exec_info) {
          auto it = exec_info->find(e.function.get());
          if (it == exec_info->end() || !it->second.should_execute()) continue;
          if (!it->second.needed_) call.node_calls.lookup(e.function).needed = false;
        }
        if (++visited[e.function.get()] == deps[e.function.get()]) worklist.push_back(e.function);
      }
    }
  } catch (const std::exception& e) {
    key.error = Message(e);
    key.error_at = int64_t(key.nodes.size());
  }
  return key;
}

#else

bool CaWalkAvailable() { return false; }

ta::Node* CurrentNode() { return nullptr; }

CompiledAutogradKey WalkCompiledAutograd(const CaWalkStart&, const std::function<int64_t(const ta::Node*)>&) {
  return CompiledAutogradKey();
}

#endif

}  // namespace compat
}  // namespace cautograd
