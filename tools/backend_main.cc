// cautograd-backend: the commands that run libtorch, built once per
// libtorch. `cautograd` runs it (tools/cmd_forward.cc); it is not meant to
// be run by hand, though nothing breaks if it is.
#include "tools/command.h"

#include "lib/trace/trace.h"

int main(int argc, char** argv) {
  using namespace cautograd;
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(MakeRecordModelCommand());
  commands.push_back(MakeReplayCommand());
  commands.push_back(MakeReduceCommand());
  commands.push_back(MakeBenchCommand());
  return RunCli(argc, argv, std::move(commands), [] {
    return std::string("cautograd ") + kToolVersion + " backend for torch " + CAUTOGRAD_BACKEND_VERSION;
  });
}
