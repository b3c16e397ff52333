// The backends a cautograd build has: one per libtorch, each a directory
// backends/<version>/ beside the cautograd binary (a build tree) or in
// ../lib/cautograd/backends/ (an installed prefix), holding the program
// that runs record --model, replay and bench (cautograd-backend), the shim
// `record -- COMMAND` loads into programs that use that libtorch, and
// backend.txt, which says which libtorch it is (cmake/backend.cmake).
#pragma once

#include <string>
#include <vector>

namespace cautograd {

struct Backend {
  std::string version;  // torch.__version__ of a wheel ("2.13.0+cpu"), Debian's "1.13.0"
  std::string origin;   // "debian" or "pip"
  std::string libc10;   // realpath of the libc10 it links: which processes it can record
  std::string python;   // the interpreter whose torch it was built against
  std::string dir;
  std::string program;  // dir + "/cautograd-backend"
  std::string shim;     // dir + "/libcautograd_shim.so"
};

// The backends of the cautograd at `exe`, in version order (Debian's
// first). False and *err only when a backend.txt is unreadable; no
// backends at all is not an error here.
bool FindBackends(const std::string& exe, std::vector<Backend>* backends, std::string* err);

// The preloaded library beside `exe` or in ../lib/cautograd.
bool FindPreload(const std::string& exe, std::string* path, std::string* err);

// The backend whose version is `want`; with `want` empty, the first. Null
// and *err (naming the versions there are) when there is none.
const Backend* ChooseBackend(const std::vector<Backend>& backends, const std::string& want, std::string* err);

// The backend that links the libc10 at `libc10` (any path to it); null if none.
const Backend* BackendForLibc10(const std::vector<Backend>& backends, const std::string& libc10);

// "1.13.0 (debian), 2.13.0+cpu (pip)", for messages.
std::string BackendList(const std::vector<Backend>& backends);

// How to build a backend for the torch that `python` imports, for messages.
std::string HowToAddBackend(const std::string& python);

}  // namespace cautograd
