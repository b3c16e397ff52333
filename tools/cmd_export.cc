// cautograd export: a trace's timings for other viewers. Today one format,
// the Chrome Trace Event JSON that Perfetto UI and chrome://tracing open.
#include <zlib.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "lib/report/chrome_trace.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "tools/command.h"

namespace cautograd {

namespace {

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The gzip file format (RFC 1952) around `text`, which the viewers open as is.
bool Gzip(const std::string& text, std::string* out, std::string* err) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    *err = "cannot start zlib";
    return false;
  }
  out->resize(deflateBound(&z, uLong(text.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = uInt(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = uInt(out->size());
  const int rc = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    *err = "zlib could not compress the output";
    return false;
  }
  return true;
}

class ExportCommand : public Command {
 public:
  const char* name() const override { return "export"; }
  const char* description() const override {
    return "Write a trace's timings as Chrome Trace Event JSON for Perfetto UI or chrome://tracing.";
  }

  void AddFlags(CLI::App* app) override {
    app->add_option("FILE", path_, "The trace")->required();
    app->add_flag("--chrome-trace", chrome_, "Chrome Trace Event format (the one format today)")->required();
    app->add_option("-o,--output", output_, "File to write; a name ending in .gz is gzip-compressed")->required();
  }

  int Run() override {
    Trace trace;
    std::string err;
    ReadOptions metadata_only;
    metadata_only.values = false;
    if (!ReadTraceFile(path_, &trace, &err, metadata_only)) return Fail(name(), err, kExitBadInput);
    std::string text = ChromeTraceJson(trace, path_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += "\n";
    if (EndsWith(output_, ".gz")) {
      std::string packed;
      if (!Gzip(text, &packed, &err)) return Fail(name(), err, kExitFailure);
      text.swap(packed);
    }
    if (!WriteFileAtomic(output_, text, &err)) return Fail(name(), err, kExitFailure);
    std::cout << "wrote " << output_ << " (" << HumanBytes(int64_t(text.size())) << "): " << trace.calls.size()
              << (trace.calls.size() == 1 ? " call" : " calls") << "; open it in https://ui.perfetto.dev or chrome://tracing\n";
    return kExitOk;
  }

 private:
  std::string path_, output_;
  bool chrome_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeExportCommand() { return std::make_unique<ExportCommand>(); }

}  // namespace cautograd
