// cautograd convert: rewrites a trace in either version of the format, so
// traces kept in a repository or CI move to version 2 (or back to 1 for a
// tool that reads only that).
#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/trace/archive.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

class ConvertCommand : public Command {
 public:
  const char* name() const override { return "convert"; }
  const char* description() const override {
    return "Rewrite a trace in format version 2 (one archive with raw values) or 1 (JSON with base64 "
           "values); every value's checksum is checked on the way, one value in memory at a time.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", in_, "Trace to read (either version)")->required();
    app->add_option("-o,--output", out_, "Trace to write (atomically: a temporary file renamed over it)")
        ->required();
    app->add_option("--to", to_, "Format version to write: 2 (the default) or 1")->check(CLI::IsMember({1, 2}));
    app->add_flag("--compress", compress_,
                  "Version 2: store each value as a zstd frame where that saves at least an eighth");
  }

  int Run() override {
    if (compress_ && to_ == 1)
      return Fail(name(), "--compress needs --to 2: version 1 keeps values as base64 text", kExitBadInput);
    Trace trace;
    std::string err;
    ReadOptions lazily;  // values are read one by one as they are written
    lazily.values = false;
    if (!ReadTraceFile(in_, &trace, &err, lazily)) return Fail(name(), err, kExitBadInput);
    FileSource before, after;  // for the sizes; `before` before OUT may replace it
    std::string ignored;
    before.Open(in_, &ignored);
    WriteOptions options;
    options.version = to_;
    options.compress = compress_;
    bool input_failed = false;
    options.input_failed = &input_failed;
    if (!WriteTraceFile(out_, trace, &err, options))
      return Fail(name(), err, input_failed ? kExitBadInput : kExitFailure);
    after.Open(out_, &ignored);
    std::cout << "converted " << in_ << " (version " << trace.version << ", "
              << HumanBytes(int64_t(before.size())) << ") to " << out_ << " (version " << to_ << ", "
              << HumanBytes(int64_t(after.size())) << ")\n";
    return kExitOk;
  }

 private:
  std::string in_, out_;
  int to_ = 2;
  bool compress_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeConvertCommand() { return std::make_unique<ConvertCommand>(); }

}  // namespace cautograd
