// The flags of `cautograd record`, shared by the two programs that read
// them: cautograd itself (which runs -- COMMAND) and a backend (--model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace cautograd {

struct RecordFlags {
  bool list = false;
  std::vector<std::string> command;
  int64_t max_calls = -1;
  std::string model;
  int steps = 0;
  int batch = 0;
  uint64_t seed = 0;
  std::string values = "ints";
  std::string calls = "all";
  std::string output;
  std::string torch;  // cautograd's only: which backend runs --model
  bool allow_skipped = false;
  bool compress = false;
};

struct Trace;
struct WriteOptions;

// How `record` writes its trace, from the flags.
WriteOptions RecordWriteOptions(const RecordFlags& flags);

// Ends `record` (either program's): when some chosen calls could not be
// recorded, prints a last line naming how many and the first, and turns
// `status` 0 into kExitSkipped unless --allow-skipped. Returns the status
// to exit with.
int ReportSkipped(const Trace& trace, bool allow_skipped, int status);

// One line on what tensor data a trace holds, so that nobody posts a
// model's weights by accident: "values: all, 47 tensors, 45.3 KiB (...)".
std::string ValuesLine(const Trace& trace);

// `with_torch`: whether to offer --torch (cautograd does; a backend is one torch).
void AddRecordFlags(CLI::App* app, RecordFlags* flags, bool with_torch);

// What both programs refuse before anything runs; false and *err (one line).
bool CheckRecordFlags(const RecordFlags& flags, std::string* err);

}  // namespace cautograd
