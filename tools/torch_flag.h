// --torch in a backend's commands. `cautograd` reads it to choose the
// backend and takes it out; a backend run by hand with another version
// says so instead of running on the wrong libtorch. Backend programs only
// (CAUTOGRAD_BACKEND_VERSION is the backend's torch).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace cautograd {

inline void AddTorchFlag(CLI::App* app, std::string* torch) {
  app->add_option("--torch", *torch,
                  "The backend to run on, by its torch version ('cautograd --version' lists them); default: "
                  "the one that recorded FILE if this build has it, else the first");
}

// False and *err when `torch` names another backend than this one.
inline bool IsThisBackend(const std::string& torch, std::string* err) {
  if (torch.empty() || torch == CAUTOGRAD_BACKEND_VERSION) return true;
  *err = std::string("this is the backend for torch ") + CAUTOGRAD_BACKEND_VERSION + ", not '" + torch +
         "'; run it through 'cautograd', which picks the backend --torch names";
  return false;
}

}  // namespace cautograd
