// Reading and writing trace files. Reading validates everything a stranger's
// file could get wrong; every failure is one line naming the file and the
// JSON path ("t.json: calls[0].ops[57].args[1]: ...").
#pragma once

#include <string>

#include "lib/trace/trace.h"

namespace cautograd {

// Parses and validates trace text. `source` names it in messages.
bool ParseTrace(const std::string& text, const std::string& source, Trace* trace, std::string* err);
bool ReadTraceFile(const std::string& path, Trace* trace, std::string* err);

std::string SerializeTrace(const Trace& trace);
// Writes to a temporary file beside `path`, then renames it over `path`, so
// a reader never sees half a trace and an old trace survives a failed write.
// `durable` also flushes the data to the disk before the rename (so it
// survives a power cut, not just a crash of the process); the shim's
// per-call files skip that, as it costs milliseconds per call.
enum class Durability { kDurable, kCrashSafe };
bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err,
                    Durability durability = Durability::kDurable);

// Same atomic write, for any text.
bool WriteFileAtomic(const std::string& path, const std::string& text, std::string* err,
                     Durability durability = Durability::kDurable);
bool ReadFile(const std::string& path, std::string* text, std::string* err);

}  // namespace cautograd
