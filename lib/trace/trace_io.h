// Reading and writing trace files, both versions (docs/trace-format.md):
// version 1 is bare JSON with base64 values; version 2, what cautograd
// writes, is an archive (lib/trace/archive.h) of raw values and the JSON.
// Reading validates everything a stranger's file could get wrong; every
// failure is one line naming the file and the JSON path or archive entry
// ("t.cag: calls[0].ops[57].args[1]: ...").
#pragma once

#include <string>

#include "lib/trace/trace.h"

namespace cautograd {

struct ReadOptions {
  // Read every value's bytes and check its checksum (replay, diff's
  // numerics, convert). Without, a version 2 file's values are not touched:
  // each is left with `has_data` false. A version 1 file is read whole
  // either way (its values are inside its JSON).
  bool values = true;
};

// Parses and validates version 1 trace text. `source` names it in messages.
bool ParseTrace(const std::string& text, const std::string& source, Trace* trace, std::string* err);
// Either version, from bytes in memory (tests, the fuzzer).
bool ParseTraceBytes(const std::string& bytes, const std::string& source, Trace* trace, std::string* err,
                     const ReadOptions& options = {});
bool ReadTraceFile(const std::string& path, Trace* trace, std::string* err, const ReadOptions& options = {});

// Version 1 text.
std::string SerializeTrace(const Trace& trace);

// Writes to a temporary file beside `path`, then renames it over `path`, so
// a reader never sees half a trace and an old trace survives a failed write.
// `durable` also flushes the data to the disk before the rename (so it
// survives a power cut, not just a crash of the process); the shim's
// per-call files skip that, as it costs milliseconds per call.
enum class Durability { kDurable, kCrashSafe };
struct WriteOptions {
  int version = kTraceVersion;  // 1 or 2
  // Version 2: store each value as a zstd frame where that saves at least
  // an eighth of its bytes.
  bool compress = false;
  Durability durability = Durability::kDurable;
};
bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err, const WriteOptions& options);
bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err,
                    Durability durability = Durability::kDurable);
// A version 2 trace into memory. False when a value's bytes were not read.
bool SerializeTraceArchive(const Trace& trace, const WriteOptions& options, std::string* out, std::string* err);

// Same atomic write, for any text.
bool WriteFileAtomic(const std::string& path, const std::string& text, std::string* err,
                     Durability durability = Durability::kDurable);
bool ReadFile(const std::string& path, std::string* text, std::string* err);

}  // namespace cautograd
