// libtorch's own autograd engine, unchanged, except that it tells the
// recorder when each call comes, its graph task and the node it starts from
// (before any node runs), and when it returns. libtorch lets a process
// choose its default engine (Python puts its own in this way); a C++
// program's backward() and grad() run through it. Without it, the single
// root of a call is only found by watching the forward op that made it.
// Internal to lib/recorder.
#pragma once

#include <cstdint>

#include <torch/csrc/autograd/engine.h>

#include "lib/torch_compat/torch_compat.h"

namespace cautograd {
namespace rec {

// What the engine tells. CallComing returns a serial for the other two
// (0: the call is not announced).
class CallAnnouncer {
 public:
  virtual uint64_t CallComing() = 0;
  virtual void TaskStarting(uint64_t serial, const void* task, const compat::NodePtr& root) = 0;
  virtual void CallReturned(uint64_t serial) = 0;

 protected:
  ~CallAnnouncer() = default;
};

// The one engine instance (never destroyed: a call may still run in it at
// exit, and the threads it starts for devices outlive any recorder).
torch::autograd::Engine& AnnouncingEngineInstance();

// Who the engine tells; null: nobody, and the engine is libtorch's own.
void SetCallAnnouncer(CallAnnouncer* announcer);

}  // namespace rec
}  // namespace cautograd
