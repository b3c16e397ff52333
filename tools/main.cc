// cautograd: reads, compares and explains traces with no libtorch in the
// process; runs record --model, replay and bench through a backend built
// against one libtorch (lib/shim/backends.h).
#include "lib/shim/backends.h"
#include "lib/trace/trace.h"
#include "tools/command.h"

namespace {

std::string VersionText() {
  std::string text = std::string("cautograd ") + cautograd::kToolVersion + " (trace format v" +
                     std::to_string(cautograd::kTraceVersion) + ")\nbackends:";
  std::vector<cautograd::Backend> backends;
  std::string err;
  if (!cautograd::FindBackends("/proc/self/exe", &backends, &err)) return text + " " + err;
  if (backends.empty()) text += " none";
  for (const cautograd::Backend& b : backends)
    text += "\n  torch " + b.version + " (" + b.origin + "): " + b.libc10 +
            (b.python.empty() ? "" : ", " + b.python);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cautograd;
  // In the order a user meets them: record, look, replay, compare, explain, see, shrink and reproduce, time, migrate.
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(MakeRecordCommand());
  commands.push_back(MakeShowCommand());
  commands.push_back(MakeForwardedCommand("replay", kReplayDescription));
  commands.push_back(MakeDiffCommand());
  commands.push_back(MakeRecompileCommand());
  commands.push_back(MakeReportCommand());
  commands.push_back(MakeExportCommand());
  commands.push_back(MakeDotCommand());
  commands.push_back(MakeForwardedCommand("reduce", kReduceDescription));
  commands.push_back(MakeReproCommand());
  commands.push_back(MakeForwardedCommand("bench", kBenchDescription));
  commands.push_back(MakeConvertCommand());
  return RunCli(argc, argv, std::move(commands), VersionText);
}
