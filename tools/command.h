// The CLI's subcommands: each is a class in its own file pair that names
// itself, declares its flags and runs. tools/command.cc holds the one list.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace cautograd {

// Exit statuses, the same for every subcommand (docs/cli.md).
enum ExitCode {
  kExitOk = 0,
  kExitDifferences = 1,  // diff found differences, replay --check diverged
  kExitBadInput = 2,     // bad usage, or a file that cannot be read or trusted
  kExitFailure = 3,      // the work itself failed (recording, writing)
};

class Command {
 public:
  virtual ~Command() = default;
  virtual const char* name() const = 0;
  virtual const char* description() const = 0;
  virtual std::vector<std::string> aliases() const { return {}; }
  virtual void AddFlags(CLI::App* app) = 0;
  virtual int Run() = 0;
};

std::unique_ptr<Command> MakeBenchCommand();
std::unique_ptr<Command> MakeDiffCommand();
std::unique_ptr<Command> MakeRecordCommand();
std::unique_ptr<Command> MakeRecompileCommand();
std::unique_ptr<Command> MakeReplayCommand();
std::unique_ptr<Command> MakeShowCommand();

// Parses argv, runs the chosen subcommand, returns the exit status.
int RunCli(int argc, char** argv);

// Prints "cautograd <command>: <message>" on stderr; returns `code`.
int Fail(const std::string& command, const std::string& message, int code);

// argv as recorded in a trace's meta.command.
const std::vector<std::string>& CommandLine();

}  // namespace cautograd
