// The commands cautograd hands to a backend (replay, bench), and how any
// command runs one: the backend's program replaces this process, so its
// output and exit status are the command's.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <unistd.h>

#include "lib/shim/backends.h"
#include "tools/command.h"

namespace cautograd {

int ExecBackend(const Backend& backend, const std::string& command, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CommandLine().empty() ? std::string("cautograd") : CommandLine()[0],
                                   command};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (std::string& a : argv) raw.push_back(&a[0]);
  raw.push_back(nullptr);
  execv(backend.program.c_str(), raw.data());
  return Fail(command,
              "cannot run the backend for torch " + backend.version + " (" + backend.program +
                  "): " + std::strerror(errno) + "; rebuild cautograd",
              kExitFailure);
}

bool TakeTorchFlag(std::vector<std::string>* args, std::string* torch) {
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    if (a == "--") break;
    if (a.rfind("--torch=", 0) == 0) {
      *torch = a.substr(8);
      args->erase(args->begin() + long(i));
      return true;
    }
    if (a == "--torch" && i + 1 < args->size()) {
      *torch = (*args)[i + 1];
      args->erase(args->begin() + long(i), args->begin() + long(i) + 2);
      return true;
    }
  }
  return false;
}

namespace {

// The libtorch a trace was recorded with, read from the start of the file
// (the writer puts meta first) without parsing the whole trace: only to
// choose a backend, which then reads and validates the trace itself.
std::string PeekLibtorchVersion(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(&head[0], long(head.size()));
  head.resize(size_t(in.gcount()));
  const std::string key = "\"libtorch_version\":\"";
  size_t at = head.find(key);
  if (at == std::string::npos) return "";
  size_t end = head.find('"', at + key.size());
  return end == std::string::npos ? "" : head.substr(at + key.size(), end - at - key.size());
}

class ForwardedCommand : public Command {
 public:
  ForwardedCommand(const char* name, const char* description) : name_(name), description_(description) {}
  const char* name() const override { return name_; }
  const char* description() const override { return description_; }
  void AddFlags(CLI::App*) override {}
  int Run() override { return kExitFailure; }
  bool forwarded() const override { return true; }

  // The backend: the one --torch (or $CAUTOGRAD_TORCH) names; else the one
  // that recorded the trace given, if this build has it; else the first.
  int Forward(const std::vector<std::string>& given) override {
    std::vector<std::string> args = given;
    std::string want;
    if (!TakeTorchFlag(&args, &want))
      if (const char* env = std::getenv("CAUTOGRAD_TORCH")) want = env;
    std::vector<Backend> backends;
    std::string err;
    if (!FindBackends("/proc/self/exe", &backends, &err)) return Fail(name_, err, kExitFailure);
    if (want.empty()) {
      for (const std::string& a : args) {
        if (a.empty() || a[0] == '-' || access(a.c_str(), R_OK) != 0) continue;
        std::string recorded = PeekLibtorchVersion(a);
        for (const Backend& b : backends)
          if (b.version == recorded) want = recorded;
        break;
      }
    }
    const Backend* backend = ChooseBackend(backends, want, &err);
    if (!backend) return Fail(name_, err, kExitBadInput);
    return ExecBackend(*backend, name_, args);
  }

 private:
  const char* name_;
  const char* description_;
};

}  // namespace

std::unique_ptr<Command> MakeForwardedCommand(const char* name, const char* description) {
  return std::make_unique<ForwardedCommand>(name, description);
}

}  // namespace cautograd
