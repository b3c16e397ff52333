#include "tools/command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/trace/trace.h"

namespace cautograd {

namespace {

std::vector<std::string> g_command_line;

}  // namespace

const char* const kReplayDescription =
    "Re-execute a trace's recorded ops with no model code; with --check, prove the results match.";
const char* const kReduceDescription =
    "Shrink a trace to the few ops on which a problem still shows (replay diverges, an op crashes, numerics "
    "differ from another trace, a command exits 0); the result replays on its own.";
const char* const kBenchDescription =
    "Time eager backward against replay and the compiled program, per op; or what recording costs.";

const std::vector<std::string>& CommandLine() { return g_command_line; }

int Fail(const std::string& command, const std::string& message, int code) {
  std::cerr << "cautograd" << (command.empty() ? "" : " " + command) << ": " << message << "\n";
  return code;
}

int RunCli(int argc, char** argv, std::vector<std::unique_ptr<Command>> commands,
           const std::function<std::string()>& version) {
  g_command_line.assign(argv, argv + argc);
  if (argc >= 2) {
    for (const auto& command : commands) {
      if (!command->forwarded() || argv[1] != std::string(command->name())) continue;
      return command->Forward(std::vector<std::string>(argv + 2, argv + argc));
    }
  }
  CLI::App app{"cautograd: record PyTorch backward passes and work on the trace offline."};
  app.name("cautograd");
  app.set_version_flag("--version", version);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 diff found differences or replay --check diverged, 2 bad usage or input,\n"
      "3 failure, 4 record wrote a trace but some chosen calls could not be recorded.\n"
      "Run 'cautograd COMMAND --help' for a command's flags.");

  std::vector<CLI::App*> subs;
  for (const auto& command : commands) {
    CLI::App* sub = app.add_subcommand(command->name(), command->description());
    for (const std::string& alias : command->aliases()) sub->alias(alias);
    if (!command->forwarded()) command->AddFlags(sub);
    subs.push_back(sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "";
    for (size_t i = 0; i < subs.size(); ++i)
      if (subs[i]->parsed()) where = commands[i]->name();
    std::string message = e.what();
    return Fail(where.empty() ? "" : where,
                message + ". Run 'cautograd " + where + (where.empty() ? "" : " ") + "--help' for usage.",
                kExitBadInput);
  }
  for (size_t i = 0; i < subs.size(); ++i)
    if (subs[i]->parsed()) return FinishOutput(commands[i]->name(), commands[i]->Run());
  return Fail("", "no command given. Run 'cautograd --help' for the list.", kExitBadInput);
}

int FinishOutput(const std::string& command, int status) {
  // What a command printed may still sit in a buffer: a full disk or a
  // closed pipe shows only now, and must not pass for success.
  std::cout.flush();
  bool failed = !std::cout.good();
  failed |= std::fflush(stdout) != 0 || std::ferror(stdout);
  if (!failed) return status;
  std::string why = errno ? std::strerror(errno) : "write error";
  Fail(command, "cannot write the output to stdout: " + why, kExitFailure);
  return status == kExitOk ? int(kExitFailure) : status;
}

}  // namespace cautograd
