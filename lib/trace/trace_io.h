// Reading and writing trace files, both versions (docs/trace-format.md):
// version 1 is bare JSON with base64 values; version 2, what cautograd
// writes, is an archive (lib/trace/archive.h) of raw values and the JSON.
// Reading validates everything a stranger's file could get wrong; every
// failure is one line naming the file and the JSON path or archive entry
// ("t.cag: calls[0].ops[57].args[1]: ...").
#pragma once

#include <cstdint>
#include <string>

#include "lib/trace/trace.h"

namespace cautograd {

struct ReadOptions {
  // Read every value's bytes and check its checksum (replay, diff's
  // numerics, convert). Without, a version 2 file's values are not touched:
  // each is left with `has_data` false. A version 1 file is read whole
  // either way (its values are inside its JSON).
  bool values = true;
  // The most bytes the values may take once read (compressed ones expand):
  // a trace past it is refused before any is read. Replay sets its
  // --max-memory; other commands read what the file holds.
  int64_t max_value_bytes = INT64_MAX;
};

// Parses and validates version 1 trace text. `source` names it in messages.
bool ParseTrace(const std::string& text, const std::string& source, Trace* trace, std::string* err);
// Either version, from bytes in memory (tests, the fuzzer).
bool ParseTraceBytes(const std::string& bytes, const std::string& source, Trace* trace, std::string* err,
                     const ReadOptions& options = {});
bool ReadTraceFile(const std::string& path, Trace* trace, std::string* err, const ReadOptions& options = {});

// A value's raw bytes: its `data`, or when the trace was read without
// values, read now from the file its call came from and checked (size,
// checksums). False and *err (naming the entry, not the file) when they
// cannot be read or do not check.
bool ReadValueBytes(const Call& call, const Value& value, std::string* out, std::string* err);

// Version 1 text.
std::string SerializeTrace(const Trace& trace);

// Writes to a temporary file beside `path`, then renames it over `path`, so
// a reader never sees half a trace and an old trace survives a failed write.
// `durable` also flushes the data to the disk before the rename (so it
// survives a power cut, not just a crash of the process); the shim's
// per-call files skip that, as it costs milliseconds per call.
enum class Durability { kDurable, kCrashSafe };
// Writing reads values a trace was read without from its file, one at a
// time (see SerializeTraceArchive).
struct WriteOptions {
  int version = kTraceVersion;  // 1 or 2
  // Version 2: store each value as a zstd frame where that saves at least
  // an eighth of its bytes.
  bool compress = false;
  Durability durability = Durability::kDurable;
  // Set when the write failed because a value could not be read from the
  // file it was to come from (the input is bad, not the output).
  bool* input_failed = nullptr;
};
bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err, const WriteOptions& options);
bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err,
                    Durability durability = Durability::kDurable);
// A version 2 trace into memory. Values whose bytes were not read are read
// from their call's file one at a time (ReadValueBytes), so a trace of any
// size can be rewritten in little memory; false when one cannot be.
bool SerializeTraceArchive(const Trace& trace, const WriteOptions& options, std::string* out, std::string* err);

// Same atomic write, for any text.
bool WriteFileAtomic(const std::string& path, const std::string& text, std::string* err,
                     Durability durability = Durability::kDurable);
bool ReadFile(const std::string& path, std::string* text, std::string* err);

}  // namespace cautograd
