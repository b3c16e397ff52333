// The container of a version 2 trace: the subset of ZIP (PKWARE's APPNOTE
// 6.3.x) that cautograd writes, as torch.save has done since PyTorch 1.6.
// Every entry is stored (no ZIP compression; a value may hold a zstd frame of
// its own), carries ZIP64 sizes, and starts its data on a 64-byte boundary
// through a padding extra field; the central directory and the end records
// come last. So `unzip -p t.cag trace.json | jq` reads the graph, and the
// bytes of a value can be read (or mapped) in place.
//
// The reader accepts only that subset and trusts nothing in it: every offset
// and length is checked against the file's size with overflow-checked
// arithmetic, the entries must tile the file from byte 0 to the central
// directory in order (no overlap, no hole that could hide other data), and a
// local header is checked against the directory when its entry is read.
// docs/trace-format.md, "Version 2", is the layout in prose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cautograd {

constexpr uint64_t kArchiveAlign = 64;

struct ArchiveEntry {
  std::string name;
  uint64_t header = 0;  // where its local header starts
  uint64_t data = 0;    // where its data starts: a multiple of kArchiveAlign
  uint64_t size = 0;
  uint32_t crc = 0;  // CRC-32 of the stored bytes, as ZIP keeps it
};

// Bytes read at offsets: a file, or memory (tests, the fuzzer).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Exactly `n` bytes at `offset` into `out`; false and *err (no file name:
  // the caller adds it) when they cannot be read.
  virtual bool Read(uint64_t offset, size_t n, char* out, std::string* err) const = 0;
  // What messages call it: a file's path.
  virtual std::string name() const = 0;
};

// Holds its own copy of the bytes, so a trace read from it can read its
// values later.
class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  bool Read(uint64_t offset, size_t n, char* out, std::string* err) const override;
  std::string name() const override { return "(memory)"; }

 private:
  std::string bytes_;
};

// An open file, read with pread; closed when it goes.
class FileSource : public ByteSource {
 public:
  FileSource() = default;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  ~FileSource() override;
  // False and *err ("PATH: cannot open: ...") for a missing file, a folder,
  // or anything else that is not a regular file.
  bool Open(const std::string& path, std::string* err);
  uint64_t size() const override { return size_; }
  bool Read(uint64_t offset, size_t n, char* out, std::string* err) const override;
  std::string name() const override { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A file to read: a regular file is read in place (FileSource); a pipe or
// other stream (`<(git show HEAD:t.cag)`) is read whole into memory first,
// up to `max_stream` bytes. False and *err ("PATH: ...") otherwise.
bool OpenSource(const std::string& path, uint64_t max_stream, std::shared_ptr<const ByteSource>* out,
                std::string* err);

// Writes all of `bytes` to `fd`, through short writes and EINTR; false and
// *err ("write failed: ...") otherwise.
bool WriteAll(int fd, std::string_view bytes, std::string* err);

// Whether the bytes start like a ZIP archive ("PK\3\4").
bool LooksLikeArchive(const ByteSource& source);

// Reads and checks the directory. `max_entries` bounds what a hostile file
// can make the reader allocate. Messages are "what is wrong" without the
// file's name.
bool ReadArchiveDirectory(const ByteSource& source, uint64_t max_entries, std::vector<ArchiveEntry>* entries,
                          std::string* err);

// Walks the local headers from byte 0, for an archive whose directory may
// never have been written (a stream file of a process that crashed): every
// entry whose header and data are whole, up to the first that runs past the
// end of the file (where the write stopped) or the directory. A header that
// is not one cautograd writes, before that, is damage: false and *err. The
// rest of each header (method, flags, padding, CRC) is checked when its
// entry is read (ReadArchiveEntry).
bool ScanArchive(const ByteSource& source, uint64_t max_entries, std::vector<ArchiveEntry>* entries,
                 std::string* err);

// Reads an entry's data into *out (resized to entry.size), after checking its
// local header against the directory, and its CRC-32.
bool ReadArchiveEntry(const ByteSource& source, const ArchiveEntry& entry, std::string* out, std::string* err);

// Writes an archive from byte 0 of an open, empty file, entry by entry, so a
// trace's values go out as they come without the whole file in memory.
class ArchiveWriter {
 public:
  explicit ArchiveWriter(int fd) : fd_(fd) {}
  // Into memory (tests, the fuzzer).
  explicit ArchiveWriter(std::string* out) : out_(out) {}
  // `crc` is the CRC-32 of the bytes (the caller has usually computed it
  // already). Names: printable ASCII, at most 255 bytes, unique.
  bool Add(const std::string& name, std::string_view bytes, uint32_t crc, std::string* err);
  // The central directory and end records, then everything buffered goes
  // to the file: the archive is whole after it.
  bool Finish(std::string* err);
  // Hands what is buffered to the file: every entry added so far is whole
  // on disk for a reader (ScanArchive), even if this process dies next.
  bool Flush(std::string* err);
  const std::vector<ArchiveEntry>& entries() const { return entries_; }
  uint64_t bytes_written() const { return pos_; }

 private:
  bool Write(std::string_view bytes, std::string* err);
  int fd_ = -1;
  std::string* out_ = nullptr;
  std::string buffer_;
  uint64_t pos_ = 0;
  std::vector<ArchiveEntry> entries_;
};

}  // namespace cautograd
