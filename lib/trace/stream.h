// A process's stream file under `cautograd record -- COMMAND`: one per
// process, appended as the program runs, written by a thread of its own so
// that the program only copies values out and goes on.
//
// The file is an archive of the version 2 subset (lib/trace/archive.h)
// holding `values/K` entries, the bytes of values as the recorder copied
// them, and `calls/N.json` entries, one per finished (or skipped) call: a
// one-call version 2 trace whose values name `values/K` entries written
// before it. The directory is written when the process exits normally; a
// process that dies leaves a file that ScanArchive reads up to its last
// whole entry, and every call whose JSON entry is whole is kept.
// `cautograd record` assembles the streams into one trace (ReadStream).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lib/trace/archive.h"
#include "lib/trace/trace.h"

namespace cautograd {

class StreamWriter {
 public:
  // At most this many bytes of values wait for the writer; past it, AddValue
  // waits for the writer to catch up instead of memory growing.
  static constexpr int64_t kDefaultBudget = int64_t(256) << 20;

  StreamWriter() = default;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  ~StreamWriter();  // Close()s

  // Creates `path` (which must not exist) and starts the writer thread.
  // `compress`: values become zstd frames where that saves an eighth.
  bool Open(const std::string& path, bool compress, int64_t budget, std::string* err);

  // Takes a value's bytes; returns the id a call's Value gives as `spooled`.
  // Thread-safe; blocks while the values waiting exceed the budget.
  int64_t AddValue(std::string bytes);
  // A finished call (its values' `spooled` ids given by AddValue) or a
  // skipped one, as a one-call trace; the program goes on while the writer
  // writes it. Thread-safe.
  void AddCall(Trace one_call);
  // The same, for a call whose last steps are left to the writer's thread:
  // `make` returns the one-call trace there (RecorderOptions::on_call_deferred).
  void AddCall(std::function<Trace()> make);
  // Waits, at most `seconds`, until every call handed over is in the file.
  // Async-signal-safe (atomics and nanosleep only): a fatal signal's handler
  // calls it so that a crash does not lose the calls that had ended.
  bool WaitForCalls(double seconds) const;
  // Writes what waits, then the directory; the file is a whole archive.
  bool Close(std::string* err);

  // The first write error ("" if none); after one, everything is dropped.
  std::string error() const;
  int64_t calls_written() const;

 private:
  struct Item {
    int64_t value = -1;  // a value's id, or -1: a call
    std::string bytes;
    Trace call;
    std::function<Trace()> make;  // a call: makes `call`, on the writer's thread
  };
  void Run();
  void WriteValue(int64_t id, const std::string& bytes);
  void WriteCall(Trace& call);

  int fd_ = -1;
  bool compress_ = false;
  int64_t budget_ = kDefaultBudget;
  std::unique_ptr<ArchiveWriter> archive_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  int64_t queued_bytes_ = 0;
  int64_t next_value_ = 0;
  std::atomic<int64_t> calls_queued_{0}, calls_written_{0};
  bool closing_ = false, closed_ = false;
  std::string error_;
  // The writer thread's own: how each value was stored, by id.
  struct Stored {
    std::string entry;
    uint32_t crc = 0;
    bool zstd = false;
  };
  std::unordered_map<int64_t, Stored> stored_;  // until the call that names it is written
};

// Reads a stream file, whole or cut short: every call whose JSON entry is
// whole, in the order written, each reading its values from the file later
// (Call::value_source). Skipped calls go to `skipped`. False and *err for a
// stream that cannot be read at all or a call entry that does not parse.
bool ReadStream(const std::string& path, std::vector<Call>* calls, std::vector<SkippedCall>* skipped, Meta* meta,
                std::string* err);

}  // namespace cautograd
