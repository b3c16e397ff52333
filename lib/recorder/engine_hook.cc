#include "lib/recorder/engine_hook.h"

#include <atomic>

#include <torch/csrc/autograd/graph_task.h>

#include "lib/recorder/op_capture.h"

namespace cautograd {
namespace rec {

namespace {

std::atomic<CallAnnouncer*> g_announcer{nullptr};

// The call this thread's execute() announced, for the execute_with_graph_task
// the engine calls from inside it.
thread_local uint64_t t_announced = 0;

class AnnouncingEngine : public ta::Engine {
 public:
  ta::variable_list execute(const ta::edge_list& roots, const ta::variable_list& inputs, bool keep_graph,
                            bool create_graph, bool accumulate_grad, const ta::edge_list& outputs) override {
    CallAnnouncer* announcer = g_announcer.load(std::memory_order_acquire);
    if (!announcer)
      return ta::Engine::execute(roots, inputs, keep_graph, create_graph, accumulate_grad, outputs);
    // A backward call made inside an op (a kernel that calls grad) is a
    // call of its own, not a nested op: t_in_op is off until it returns.
    struct Scope {
      CallAnnouncer* announcer;
      uint64_t serial;
      uint64_t outer_serial;
      bool outer_in_op;
      ~Scope() {
        t_announced = outer_serial;
        t_in_op = outer_in_op;
        if (g_announcer.load(std::memory_order_acquire) == announcer) announcer->CallReturned(serial);
      }
    } scope{announcer, announcer->CallComing(), t_announced, t_in_op};
    t_announced = scope.serial;
    t_in_op = false;
    return ta::Engine::execute(roots, inputs, keep_graph, create_graph, accumulate_grad, outputs);
  }

  c10::intrusive_ptr<at::ivalue::Future> execute_with_graph_task(
      const std::shared_ptr<ta::GraphTask>& graph_task, compat::NodePtr graph_root,
      ta::InputBuffer&& input_buffer) override {
    uint64_t serial = t_announced;
    t_announced = 0;  // taken: a call its nodes make announces itself
    CallAnnouncer* announcer = g_announcer.load(std::memory_order_acquire);
    if (announcer && serial) announcer->TaskStarting(serial, &graph_task->nodes_in_graph_, graph_root);
    return ta::Engine::execute_with_graph_task(graph_task, std::move(graph_root), std::move(input_buffer));
  }
};

}  // namespace

ta::Engine& AnnouncingEngineInstance() {
  static ta::Engine* engine = new AnnouncingEngine();
  return *engine;
}

void SetCallAnnouncer(CallAnnouncer* announcer) { g_announcer.store(announcer, std::memory_order_release); }

}  // namespace rec
}  // namespace cautograd
