// Trace files on disk: which version a file is, version 2's archive around
// the JSON, reading values only when asked, and writing atomically.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "lib/trace/archive.h"
#include "lib/trace/encoding.h"
#include "lib/trace/human.h"
#include "lib/trace/trace_io.h"
#include "lib/trace/trace_json.h"

namespace cautograd {

namespace {

constexpr const char* kJsonEntry = "trace.json";
constexpr const char* kValuePrefix = "values/";
// What a hostile archive can make the reader allocate before anything else
// is checked: its directory, and the JSON it reads in one piece.
constexpr uint64_t kMaxEntries = uint64_t(1) << 24;
constexpr uint64_t kMaxJson = uint64_t(2) << 30;
// What is read into memory from a pipe (a trace that is not a file).
constexpr uint64_t kMaxStream = uint64_t(16) << 30;

bool IsValueEntry(const std::string& name) {
  if (name.compare(0, std::strlen(kValuePrefix), kValuePrefix) != 0) return false;
  const size_t digits = name.size() - std::strlen(kValuePrefix);
  if (digits == 0 || digits > 12) return false;
  for (size_t i = std::strlen(kValuePrefix); i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

bool ParseArchive(const ByteSource& src, const std::string& source, Trace* trace, std::string* err) {
  std::vector<ArchiveEntry> entries;
  std::string why;
  if (!ReadArchiveDirectory(src, kMaxEntries, &entries, &why)) {
    *err = source + ": " + why;
    return false;
  }
  if (entries.empty() || entries.back().name != kJsonEntry) {
    *err = source + ": the archive's last entry is not trace.json; not a cautograd trace";
    return false;
  }
  const ArchiveEntry& json_entry = entries.back();
  if (json_entry.size > kMaxJson) {
    *err = source + ": trace.json is " + std::to_string(json_entry.size) +
           " bytes; cautograd reads at most 2 GiB of JSON";
    return false;
  }
  ArchiveIndex index;
  index.entries = &entries;
  index.used.assign(entries.size(), false);
  for (size_t i = 0; i + 1 < entries.size(); ++i) {
    const std::string& name = entries[i].name;
    if (!IsValueEntry(name)) {
      *err = source + ": unexpected entry '" + name + "' (a trace holds values/N entries, then trace.json)";
      return false;
    }
    if (!index.by_name.emplace(name, i).second) {
      *err = source + ": entry '" + name + "' appears twice";
      return false;
    }
  }
  std::string text;
  if (!ReadArchiveEntry(src, json_entry, &text, &why)) {
    *err = source + ": " + why;
    return false;
  }
  if (!ParseTraceJson(text, source, &index, trace, err)) return false;
  for (size_t i = 0; i + 1 < entries.size(); ++i) {
    if (!index.used[i]) {
      *err = source + ": entry '" + entries[i].name + "' is named by no value; a trace holds nothing else";
      return false;
    }
  }
  return true;
}

// The raw bytes of a zstd frame, which must expand to exactly `size` bytes.
// The output grows only as the frame really produces bytes (a frame that
// lies about its size cannot make the reader allocate what it claims), and
// one byte past `size` is an error.
bool Decompress(const std::string& frame, uint64_t size, std::string* out, std::string* why) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    *why = "not a zstd frame";
    return false;
  }
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != size) {
    *why = "zstd frame declares " + std::to_string(declared) + " bytes, the trace " + std::to_string(size);
    return false;
  }
  const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
    *why = "not exactly one zstd frame";
    return false;
  }
  std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> stream(ZSTD_createDStream(), ZSTD_freeDStream);
  if (!stream || ZSTD_isError(ZSTD_initDStream(stream.get()))) {
    *why = "zstd: cannot start decompressing";
    return false;
  }
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  out->clear();
  size_t produced = 0;
  char past;  // where a byte beyond `size` would go
  for (;;) {
    // Room for twice what came so far (at least 1 MiB), never past `size`.
    const uint64_t room = std::min<uint64_t>(size, std::max<uint64_t>(uint64_t(produced) * 2, 1 << 20));
    out->resize(size_t(room));
    ZSTD_outBuffer o{produced < out->size() ? &(*out)[0] : &past, produced < out->size() ? out->size() : 1,
                     produced < out->size() ? produced : 0};
    const size_t left = ZSTD_decompressStream(stream.get(), &o, &in);
    if (ZSTD_isError(left)) {
      *why = std::string("zstd: ") + ZSTD_getErrorName(left);
      return false;
    }
    if (o.dst == &past) {
      if (o.pos > 0) {
        *why = "zstd frame expands past its declared size of " + std::to_string(size) + " bytes";
        return false;
      }
    } else {
      produced = o.pos;
    }
    if (left == 0) break;  // the frame is done
    if (in.pos == in.size && o.pos < o.size) {
      *why = "zstd frame ends before its data does";
      return false;
    }
  }
  if (produced != size) {
    *why = "zstd frame expands to " + std::to_string(produced) + " bytes, the trace declares " + std::to_string(size);
    return false;
  }
  out->resize(produced);
  return true;
}

// A stored value's raw bytes into *out, checked: the entry's local header
// and CRC-32, the frame's size, the raw bytes' CRC-32. *why names the entry.
bool ReadStoredValue(const ByteSource& src, const Value& v, std::string* out, std::string* why) {
  std::string frame;
  if (!ReadArchiveEntry(src, *v.stored, v.zstd ? &frame : out, why)) return false;
  if (v.zstd && !Decompress(frame, uint64_t(v.nbytes()), out, why)) {
    *why = "entry '" + v.stored->name + "': " + *why;
    return false;
  }
  if (Crc32(*out) != v.crc) {
    *why = "entry '" + v.stored->name + "': checksum " + Hex32(v.crc) + " does not match the data (" +
           Hex32(Crc32(*out)) + "); the file is corrupt";
    return false;
  }
  return true;
}

std::string ValuePath(const Call& call, size_t i) {
  return "calls[" + std::to_string(call.index) + "].values[" + std::to_string(i) + "]: ";
}

bool LoadValues(const ByteSource& src, const std::string& source, int64_t max_bytes, Trace* trace,
                std::string* err) {
  int64_t total = 0;
  for (const Call& call : trace->calls)
    for (const Value& v : call.values) total = SaturatingAdd(total, v.nbytes());
  if (total > max_bytes) {
    *err = source + ": its values take " + HumanBytes(total) + " once read, more than the " + HumanBytes(max_bytes) +
           " allowed (--max-memory)";
    return false;
  }
  std::string why;
  for (Call& call : trace->calls) {
    for (size_t i = 0; i < call.values.size(); ++i) {
      Value& v = call.values[i];
      if (v.has_data || !v.stored) continue;
      if (!ReadStoredValue(src, v, &v.data, &why)) {
        v.data.clear();
        *err = source + ": " + ValuePath(call, i) + why;
        return false;
      }
      v.has_data = true;
    }
  }
  return true;
}

bool ParseFrom(const std::shared_ptr<const ByteSource>& src, const std::string& source, Trace* trace,
               std::string* err, const ReadOptions& options) {
  if (LooksLikeArchive(*src)) {
    if (!ParseArchive(*src, source, trace, err)) return false;
    for (Call& call : trace->calls) call.value_source = src;
    return !options.values || LoadValues(*src, source, options.max_value_bytes, trace, err);
  }
  std::string text(size_t(src->size()), '\0');
  std::string why;
  if (!src->Read(0, text.size(), &text[0], &why)) {
    *err = source + ": " + why;
    return false;
  }
  return ParseTrace(text, source, trace, err);
}

// How one value goes into a version 2 archive: its bytes as stored, their
// CRC-32 for the entry, and the record's reference. A value whose bytes were
// not read comes from its call's file; when it is stored there as it is to
// be stored here, its entry is copied without decoding.
bool StoreValue(const Call& call, const Value& v, bool compress, std::string* raw_buf, std::string* frame,
                std::string_view* bytes, uint32_t* entry_crc, StoredRef* ref, std::string* why) {
  std::string_view raw;
  if (v.has_data) {
    raw = v.data;
    ref->crc = Crc32(v.data);
  } else if (v.stored && call.value_source) {
    const bool keep = v.zstd == compress && (v.zstd || v.crc == v.stored->crc);
    if (keep) {
      if (!ReadArchiveEntry(*call.value_source, *v.stored, frame, why)) return false;
      // A frame is copied as it is, once it is known to expand to the bytes
      // its checksum names: what is written must read back.
      why->clear();
      if (v.zstd && !(Decompress(*frame, uint64_t(v.nbytes()), raw_buf, why) && Crc32(*raw_buf) == v.crc)) {
        if (why->empty()) *why = "checksum " + Hex32(v.crc) + " does not match the data; the file is corrupt";
        *why = "entry '" + v.stored->name + "': " + *why;
        return false;
      }
      *bytes = *frame;
      *entry_crc = v.stored->crc;
      ref->crc = v.crc;
      ref->zstd = v.zstd;
      return true;
    }
    if (!ReadStoredValue(*call.value_source, v, raw_buf, why)) return false;
    raw = *raw_buf;
    ref->crc = v.crc;
  } else {
    *why = "its bytes were not read, so it cannot be written";
    return false;
  }
  *bytes = raw;
  *entry_crc = ref->crc;
  if (compress && CompressIfWorthIt(raw, frame)) {
    *bytes = *frame;
    *entry_crc = Crc32(*frame);
    ref->zstd = true;
  }
  return true;
}

// The archive of a version 2 trace, entry by entry into `w`: one value in
// memory at a time when the trace's values were not read.
bool WriteArchive(const Trace& trace, const WriteOptions& options, ArchiveWriter* w, std::string* err) {
  std::vector<StoredRef> refs;
  std::string raw, frame, why;
  size_t n = 0;
  size_t values = 0;
  for (const Call& call : trace.calls) values += call.values.size();
  if (values + 1 > kMaxEntries) {
    *err = std::to_string(values) + " values, past the " + std::to_string(kMaxEntries - 1) +
           " a reader accepts; record fewer calls (--calls, --max-calls)";
    return false;
  }
  for (const Call& call : trace.calls) {
    for (size_t i = 0; i < call.values.size(); ++i) {
      StoredRef ref;
      ref.entry = kValuePrefix + std::to_string(n++);
      std::string_view bytes;
      uint32_t entry_crc = 0;
      if (!StoreValue(call, call.values[i], options.compress, &raw, &frame, &bytes, &entry_crc, &ref, &why)) {
        *err = ValuePath(call, i) + why;
        if (call.value_source) {
          *err = "cannot read " + call.value_source->name() + ": " + *err;
          if (options.input_failed) *options.input_failed = true;
        }
        return false;
      }
      if (!w->Add(ref.entry, bytes, entry_crc, err)) return false;
      refs.push_back(std::move(ref));
    }
  }
  const std::string json = SerializeTraceJson(trace, &refs);
  // What the reader refuses is not written (its limits, above).
  if (json.size() > kMaxJson) {
    *err = "its JSON would be " + std::to_string(json.size()) + " bytes, past the 2 GiB a reader accepts";
    return false;
  }
  return w->Add(kJsonEntry, json, Crc32(json), err) && w->Finish(err);
}

// Writes through `fill` to a temporary file beside `path`, then renames it
// over `path`: a reader never sees half a trace, and an old one survives a
// failed write.
bool WriteAtomically(const std::string& path, Durability durability, const std::function<bool(int, std::string*)>& fill,
                     std::string* err) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  std::string why;
  if (!fill(fd, &why)) {
    *err = path + ": " + why;
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  }
  bool synced = durability == Durability::kCrashSafe || ::fsync(fd) == 0;
  bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    *err = path + ": write failed: " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = path + ": cannot replace: " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool ParseTraceBytes(const std::string& bytes, const std::string& source, Trace* trace, std::string* err,
                     const ReadOptions& options) {
  return ParseFrom(std::make_shared<MemorySource>(bytes), source, trace, err, options);
}

bool ReadTraceFile(const std::string& path, Trace* trace, std::string* err, const ReadOptions& options) {
  std::shared_ptr<const ByteSource> source;
  if (!OpenSource(path, kMaxStream, &source, err)) return false;
  return ParseFrom(source, path, trace, err, options);
}

bool ReadValueBytes(const Call& call, const Value& value, std::string* out, std::string* err) {
  if (value.has_data) {
    *out = value.data;
    return true;
  }
  if (!value.stored || !call.value_source) {
    *err = "the value's bytes were not kept";
    return false;
  }
  return ReadStoredValue(*call.value_source, value, out, err);
}

bool ReadFile(const std::string& path, std::string* text, std::string* err) {
  FileSource file;
  if (!file.Open(path, err)) return false;
  text->assign(size_t(file.size()), '\0');
  std::string why;
  if (!file.Read(0, text->size(), &(*text)[0], &why)) {
    *err = path + ": " + why;
    return false;
  }
  return true;
}

bool SerializeTraceArchive(const Trace& trace, const WriteOptions& options, std::string* out, std::string* err) {
  out->clear();
  ArchiveWriter w(out);
  return WriteArchive(trace, options, &w, err);
}

bool WriteFileAtomic(const std::string& path, const std::string& text, std::string* err, Durability durability) {
  return WriteAtomically(
      path, durability, [&](int fd, std::string* why) { return WriteAll(fd, text, why); }, err);
}

namespace {

// Version 1 holds every value inside its JSON: values a trace was read
// without are read into a copy first.
bool WriteVersion1(const std::string& path, const Trace& trace, std::string* err, const WriteOptions& options) {
  bool complete = true;
  for (const Call& call : trace.calls)
    for (const Value& v : call.values) complete = complete && v.has_data;
  if (complete) return WriteFileAtomic(path, SerializeTrace(trace), err, options.durability);
  Trace whole = trace;
  std::string why;
  for (Call& call : whole.calls) {
    for (size_t i = 0; i < call.values.size(); ++i) {
      Value& v = call.values[i];
      if (v.has_data) continue;
      if (!ReadValueBytes(call, v, &v.data, &why)) {
        *err = path + ": " + ValuePath(call, i) + why;
        if (call.value_source) {
          *err = path + ": cannot read " + call.value_source->name() + ": " + ValuePath(call, i) + why;
          if (options.input_failed) *options.input_failed = true;
        }
        return false;
      }
      v.has_data = true;
    }
  }
  return WriteFileAtomic(path, SerializeTrace(whole), err, options.durability);
}

}  // namespace

bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err, const WriteOptions& options) {
  if (options.version == 1) return WriteVersion1(path, trace, err, options);
  return WriteAtomically(
      path, options.durability,
      [&](int fd, std::string* why) {
        ArchiveWriter w(fd);
        return WriteArchive(trace, options, &w, why);
      },
      err);
}

bool WriteTraceFile(const std::string& path, const Trace& trace, std::string* err, Durability durability) {
  WriteOptions options;
  options.durability = durability;
  return WriteTraceFile(path, trace, err, options);
}

}  // namespace cautograd
