// The CLI's subcommands: each is a class in its own file that names itself,
// declares its flags and runs. Two programs share them: `cautograd`
// (tools/main.cc, no libtorch) and each backend's `cautograd-backend`
// (tools/backend_main.cc, one libtorch); each main holds its list.
#pragma once

#include <functional>
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
  kExitSkipped = 4,      // record: the trace is written, but some chosen calls could not be recorded
};

class Command {
 public:
  virtual ~Command() = default;
  virtual const char* name() const = 0;
  virtual const char* description() const = 0;
  virtual std::vector<std::string> aliases() const { return {}; }
  virtual void AddFlags(CLI::App* app) = 0;
  virtual int Run() = 0;
  // A command `cautograd` hands whole to a backend: its flags are the
  // backend's to parse, so Forward gets the arguments after its name
  // unparsed, instead of AddFlags and Run.
  virtual bool forwarded() const { return false; }
  virtual int Forward(const std::vector<std::string>& /*args*/) { return kExitFailure; }
};

// cautograd's own: the trace-only commands, record (which runs programs
// itself and hands --model to a backend), and the commands it forwards.
std::unique_ptr<Command> MakeConvertCommand();
std::unique_ptr<Command> MakeDiffCommand();
std::unique_ptr<Command> MakeDotCommand();
std::unique_ptr<Command> MakeExportCommand();
std::unique_ptr<Command> MakeRecordCommand();
std::unique_ptr<Command> MakeRecompileCommand();
std::unique_ptr<Command> MakeReportCommand();
std::unique_ptr<Command> MakeReproCommand();
std::unique_ptr<Command> MakeShowCommand();
std::unique_ptr<Command> MakeForwardedCommand(const char* name, const char* description);

// A backend's: the commands that run libtorch.
std::unique_ptr<Command> MakeBenchCommand();
std::unique_ptr<Command> MakeRecordModelCommand();
std::unique_ptr<Command> MakeReplayCommand();
std::unique_ptr<Command> MakeReduceCommand();

// The descriptions `cautograd --help` shows for the forwarded commands,
// the same words the backend's own --help uses.
extern const char* const kReplayDescription;
extern const char* const kBenchDescription;
extern const char* const kReduceDescription;

// Parses argv, runs the chosen one of `commands`, returns the exit status.
// `version` prints for --version.
int RunCli(int argc, char** argv, std::vector<std::unique_ptr<Command>> commands,
           const std::function<std::string()>& version);

struct Backend;

// Replaces this process with `backend`'s program running `command` with
// `args`; returns only if it cannot, with the exit status to give.
int ExecBackend(const Backend& backend, const std::string& command, const std::vector<std::string>& args);

// Takes "--torch V" or "--torch=V" (before any "--") out of `args`.
bool TakeTorchFlag(std::vector<std::string>* args, std::string* torch);

// Prints "cautograd <command>: <message>" on stderr; returns `code`.
int Fail(const std::string& command, const std::string& message, int code);

// Flushes stdout after a command ran: when what it printed could not be
// written (a full disk, a closed pipe), says so and turns success into
// kExitFailure. Returns the status to exit with.
int FinishOutput(const std::string& command, int status);

// argv as recorded in a trace's meta.command.
const std::vector<std::string>& CommandLine();

}  // namespace cautograd
