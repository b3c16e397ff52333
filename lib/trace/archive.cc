#include "lib/trace/archive.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/trace/encoding.h"

namespace cautograd {

namespace {

// Record signatures and sizes (APPNOTE 4.3).
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kLocator64Sig = 0x07064b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEnd64Size = 56, kLocator64Size = 20, kEndSize = 22;
constexpr size_t kTailSize = kEnd64Size + kLocator64Size + kEndSize;
constexpr uint16_t kVersion = 45;  // ZIP64
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: a fixed date keeps traces reproducible
constexpr uint16_t kZip64Id = 0x0001;
constexpr uint16_t kPadId = 0x4743;  // "CG": padding that aligns the data
constexpr size_t kLocalZip64 = 4 + 16;   // id, length, sizes
constexpr size_t kCentralZip64 = 4 + 24;  // id, length, sizes, local header offset
constexpr size_t kMaxName = 255;
// A directory entry is 75 bytes and its name; the cap follows from the
// reader's cap on entries and names (what the writer checks too).
constexpr uint64_t kMinCentral = kCentralSize + 1 + kCentralZip64;
constexpr uint64_t kMaxCentral = kCentralSize + kMaxName + kCentralZip64;

uint16_t Get16(const char* p) { return uint16_t(uint8_t(p[0]) | uint8_t(p[1]) << 8); }
uint32_t Get32(const char* p) { return uint32_t(Get16(p)) | uint32_t(Get16(p + 2)) << 16; }
uint64_t Get64(const char* p) { return uint64_t(Get32(p)) | uint64_t(Get32(p + 4)) << 32; }

void Put16(std::string* out, uint16_t v) {
  out->push_back(char(v & 0xFF));
  out->push_back(char(v >> 8));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, uint16_t(v & 0xFFFF));
  Put16(out, uint16_t(v >> 16));
}
void Put64(std::string* out, uint64_t v) {
  Put32(out, uint32_t(v & 0xFFFFFFFFu));
  Put32(out, uint32_t(v >> 32));
}

// Where the data of an entry whose local header starts at `header` begins:
// after the header, the name, the ZIP64 field and at least the padding
// field's own 4 bytes, rounded up to the alignment. False on overflow.
bool DataStart(uint64_t header, size_t name_size, uint64_t* data) {
  uint64_t end = 0;
  if (__builtin_add_overflow(header, kLocalSize + name_size + kLocalZip64 + 4 + (kArchiveAlign - 1), &end))
    return false;
  *data = end / kArchiveAlign * kArchiveAlign;
  return true;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name)
    if (c <= 0x20 || c >= 0x7F || c == '\\') return false;
  return true;
}

std::string Num(uint64_t v) { return std::to_string(v); }

}  // namespace

bool WriteAll(int fd, std::string_view bytes, std::string* err) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = std::string("write failed: ") + std::strerror(errno);
      return false;
    }
    p += n;
    left -= size_t(n);
  }
  return true;
}

bool MemorySource::Read(uint64_t offset, size_t n, char* out, std::string* err) const {
  if (offset > bytes_.size() || n > bytes_.size() - offset) {
    *err = "read past the end (" + Num(n) + " bytes at " + Num(offset) + " of " + Num(bytes_.size()) + ")";
    return false;
  }
  std::memcpy(out, bytes_.data() + offset, n);
  return true;
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

bool FileSource::Open(const std::string& path, std::string* err) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    *err = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    *err = path + (S_ISDIR(st.st_mode) ? ": is a folder, not a trace" : ": not a regular file");
    return false;
  }
  size_ = uint64_t(st.st_size);
  return true;
}

bool FileSource::Read(uint64_t offset, size_t n, char* out, std::string* err) const {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd_, out + got, n - got, off_t(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *err = std::string("read failed: ") + std::strerror(errno);
      return false;
    }
    if (r == 0) {
      *err = "the file shrank while it was read";
      return false;
    }
    got += size_t(r);
  }
  return true;
}

bool OpenSource(const std::string& path, uint64_t max_stream, std::shared_ptr<const ByteSource>* out,
                std::string* err) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *err = path + ": cannot open: " + std::strerror(errno);
      return false;
    }
    std::string bytes;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *err = path + ": read failed: " + std::strerror(errno);
        ::close(fd);
        return false;
      }
      if (n == 0) break;
      if (bytes.size() + size_t(n) > max_stream) {
        *err = path + ": more than " + Num(max_stream >> 30) + " GiB from a pipe; write it to a file first";
        ::close(fd);
        return false;
      }
      bytes.append(buf, size_t(n));
    }
    ::close(fd);
    *out = std::make_shared<MemorySource>(std::move(bytes));
    return true;
  }
  auto file = std::make_shared<FileSource>();
  if (!file->Open(path, err)) return false;
  *out = std::move(file);
  return true;
}

bool LooksLikeArchive(const ByteSource& source) {
  char magic[4];
  std::string ignored;
  return source.size() >= 4 && source.Read(0, 4, magic, &ignored) && Get32(magic) == kLocalSig;
}

bool ReadArchiveDirectory(const ByteSource& source, uint64_t max_entries, std::vector<ArchiveEntry>* entries,
                          std::string* err) {
  entries->clear();
  const uint64_t size = source.size();
  if (size < kTailSize) {
    *err = "truncated archive: " + Num(size) + " bytes, too short for its end records";
    return false;
  }
  char tail[kTailSize];
  if (!source.Read(size - kTailSize, kTailSize, tail, err)) return false;
  const char* end64 = tail;
  const char* locator = tail + kEnd64Size;
  const char* end = locator + kLocator64Size;
  if (Get32(end) != kEndSig || Get32(locator) != kLocator64Sig || Get32(end64) != kEnd64Sig) {
    *err = "truncated archive: it does not end with ZIP64 end records (a write that did not finish?)";
    return false;
  }
  // The subset: one disk, no comment, the 32-bit fields deferring to ZIP64.
  if (Get16(end + 4) != 0 || Get16(end + 6) != 0 || Get16(end + 8) != 0xFFFF || Get16(end + 10) != 0xFFFF ||
      Get32(end + 12) != 0xFFFFFFFFu || Get32(end + 16) != 0xFFFFFFFFu || Get16(end + 20) != 0) {
    *err = "end of central directory record is not one cautograd writes";
    return false;
  }
  const uint64_t end64_at = size - kTailSize;
  if (Get32(locator + 4) != 0 || Get64(locator + 8) != end64_at || Get32(locator + 16) != 1) {
    *err = "ZIP64 locator does not point at the record before it";
    return false;
  }
  if (Get64(end64 + 4) != kEnd64Size - 12 || Get32(end64 + 16) != 0 || Get32(end64 + 20) != 0 ||
      Get64(end64 + 24) != Get64(end64 + 32)) {
    *err = "ZIP64 end record is not one cautograd writes";
    return false;
  }
  const uint64_t count = Get64(end64 + 32), dir_size = Get64(end64 + 40), dir_at = Get64(end64 + 48);
  if (count > max_entries) {
    *err = "archive declares " + Num(count) + " entries, more than the " + Num(max_entries) + " accepted";
    return false;
  }
  uint64_t dir_end = 0;
  if (__builtin_add_overflow(dir_at, dir_size, &dir_end) || dir_end != end64_at) {
    *err = "central directory (" + Num(dir_size) + " bytes at " + Num(dir_at) +
           ") does not end where the end records start (" + Num(end64_at) + ")";
    return false;
  }
  if (dir_size > count * kMaxCentral || dir_size < count * kMinCentral) {
    *err = "central directory of " + Num(dir_size) + " bytes cannot hold " + Num(count) + " entries";
    return false;
  }
  std::string dir(size_t(dir_size), '\0');
  if (!source.Read(dir_at, dir.size(), &dir[0], err)) return false;

  entries->reserve(size_t(count));
  uint64_t next = 0;  // where the next local header must start: entries tile the file
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string at = "central directory entry " + Num(i);
    if (dir.size() - p < kCentralSize) {
      *err = at + ": truncated";
      return false;
    }
    const char* c = dir.data() + p;
    const uint16_t name_size = Get16(c + 28), extra_size = Get16(c + 30), comment_size = Get16(c + 32);
    if (Get32(c) != kCentralSig || Get16(c + 4) != kVersion || Get16(c + 6) != kVersion || Get16(c + 8) != 0 ||
        Get16(c + 10) != 0 || Get16(c + 12) != 0 || Get16(c + 14) != kDosDate || Get16(c + 36) != 0 ||
        Get32(c + 38) != 0 ||
        Get32(c + 20) != 0xFFFFFFFFu || Get32(c + 24) != 0xFFFFFFFFu || extra_size != kCentralZip64 ||
        comment_size != 0 || Get16(c + 34) != 0 || Get32(c + 42) != 0xFFFFFFFFu) {
      *err = at + ": not an entry cautograd writes (only stored ZIP64 entries, no encryption, no comment)";
      return false;
    }
    if (dir.size() - p - kCentralSize < size_t(name_size) + extra_size) {
      *err = at + ": truncated";
      return false;
    }
    ArchiveEntry e;
    e.name.assign(c + kCentralSize, name_size);
    const char* x = c + kCentralSize + name_size;
    if (!ValidName(e.name)) {
      *err = at + ": bad entry name (printable ASCII, 1 to 255 bytes)";
      return false;
    }
    if (Get16(x) != kZip64Id || Get16(x + 2) != 24 || Get64(x + 4) != Get64(x + 12)) {
      *err = "entry '" + e.name + "': ZIP64 field is not one cautograd writes";
      return false;
    }
    e.size = Get64(x + 4);
    e.header = Get64(x + 20);
    e.crc = Get32(c + 16);
    if (e.header != next) {
      *err = "entry '" + e.name + "': starts at byte " + Num(e.header) + ", expected " + Num(next) +
             (e.header < next ? " (it overlaps the entry before it)" : " (a gap before it)");
      return false;
    }
    uint64_t data_end = 0;
    if (!DataStart(e.header, name_size, &e.data) || __builtin_add_overflow(e.data, e.size, &data_end) ||
        data_end > dir_at) {
      *err = "entry '" + e.name + "': " + Num(e.size) + " bytes at " + Num(e.header) +
             " run past the central directory at " + Num(dir_at);
      return false;
    }
    next = data_end;
    entries->push_back(std::move(e));
    p += kCentralSize + name_size + extra_size;
  }
  if (p != dir.size()) {
    *err = "central directory has " + Num(dir.size() - p) + " bytes after its " + Num(count) + " entries";
    return false;
  }
  if (next != dir_at) {
    *err = Num(dir_at - next) + " bytes between the last entry and the central directory";
    return false;
  }
  return true;
}

bool ScanArchive(const ByteSource& source, uint64_t max_entries, std::vector<ArchiveEntry>* entries,
                 std::string* err) {
  entries->clear();
  const uint64_t size = source.size();
  uint64_t pos = 0;
  char h[kLocalSize + kMaxName + kLocalZip64 + 4 + kArchiveAlign];  // the largest header the checks below let through
  // Past the end of the file is where a write stopped; anything else that
  // is not a header cautograd writes is damage, and said so.
  auto damaged = [&](const char* what) {
    *err = "damaged at byte " + Num(pos) + " (" + what + ") after " + Num(entries->size()) + " whole entries";
    return false;
  };
  while (size - pos >= kLocalSize) {
    if (!source.Read(pos, kLocalSize, h, err)) return false;
    // The directory, or the end records of an archive with no entry: it was closed.
    if (Get32(h) == kCentralSig || Get32(h) == kEnd64Sig) break;
    if (Get32(h) != kLocalSig) return damaged("not a local header");
    if (entries->size() >= max_entries) return damaged("too many entries");
    const uint16_t name_size = Get16(h + 26), extra_size = Get16(h + 28);
    if (name_size == 0 || name_size > kMaxName || extra_size < kLocalZip64 + 4 ||
        extra_size > kLocalZip64 + 4 + kArchiveAlign - 1)
      return damaged("a header cautograd does not write");
    if (size - pos - kLocalSize < size_t(name_size) + extra_size) break;  // cut short
    if (!source.Read(pos + kLocalSize, size_t(name_size) + extra_size, h + kLocalSize, err)) return false;
    ArchiveEntry e;
    e.name.assign(h + kLocalSize, name_size);
    const char* x = h + kLocalSize + name_size;
    e.header = pos;
    e.crc = Get32(h + 14);
    e.size = Get64(x + 4);
    uint64_t data_end = 0;
    if (!ValidName(e.name) || Get16(x) != kZip64Id || Get16(x + 2) != 16 || Get64(x + 12) != e.size ||
        !DataStart(pos, name_size, &e.data) || e.data != pos + kLocalSize + name_size + extra_size ||
        __builtin_add_overflow(e.data, e.size, &data_end))
      return damaged("a header cautograd does not write");
    if (data_end > size) break;  // cut short
    pos = data_end;
    entries->push_back(std::move(e));
  }
  return true;
}

bool ReadArchiveEntry(const ByteSource& source, const ArchiveEntry& entry, std::string* out, std::string* err) {
  const size_t head = size_t(entry.data - entry.header);
  char h[kLocalSize + kMaxName + kLocalZip64 + 4 + kArchiveAlign];
  if (head > sizeof h || entry.size > uint64_t(SIZE_MAX)) {
    *err = "entry '" + entry.name + "': local header does not match the central directory";
    return false;
  }
  // The header and the data in two reads, the data straight into *out.
  out->resize(size_t(entry.size));
  if (!source.Read(entry.header, head, h, err) || !source.Read(entry.data, out->size(), &(*out)[0], err)) {
    *err = "entry '" + entry.name + "': " + *err;
    return false;
  }
  const size_t name_size = entry.name.size();
  const uint16_t extra_size = Get16(h + 28);
  bool ok = Get32(h) == kLocalSig && Get16(h + 4) == kVersion && Get16(h + 6) == 0 && Get16(h + 8) == 0 &&
            Get16(h + 10) == 0 && Get16(h + 12) == kDosDate && Get32(h + 14) == entry.crc && Get32(h + 18) == 0xFFFFFFFFu && Get32(h + 22) == 0xFFFFFFFFu &&
            Get16(h + 26) == name_size && kLocalSize + name_size + extra_size == head &&
            std::string_view(h + kLocalSize, name_size) == entry.name;
  if (ok) {
    const char* x = h + kLocalSize + name_size;
    ok = Get16(x) == kZip64Id && Get16(x + 2) == 16 && Get64(x + 4) == entry.size && Get64(x + 12) == entry.size &&
         Get16(x + 20) == kPadId && Get16(x + 22) == extra_size - kLocalZip64 - 4;
    for (const char* z = x + kLocalZip64 + 4; ok && z < h + head; ++z) ok = *z == 0;
  }
  if (!ok) {
    *err = "entry '" + entry.name + "': local header does not match the central directory";
    return false;
  }
  uint32_t crc = Crc32(out->data(), out->size());
  if (crc != entry.crc) {
    *err = "entry '" + entry.name + "': CRC-32 does not match its data; the file is corrupt";
    return false;
  }
  return true;
}

bool ArchiveWriter::Write(std::string_view bytes, std::string* err) {
  // Headers and small values gather in a buffer: one system call per
  // megabyte rather than two per value.
  constexpr size_t kBuffer = size_t(1) << 20;
  pos_ += bytes.size();
  if (buffer_.size() + bytes.size() <= kBuffer) {
    buffer_.append(bytes);
    return true;
  }
  if (!Flush(err)) return false;
  if (bytes.size() <= kBuffer) {
    buffer_.append(bytes);
    return true;
  }
  if (out_) {
    out_->append(bytes);
    return true;
  }
  return WriteAll(fd_, bytes, err);
}

bool ArchiveWriter::Flush(std::string* err) {
  bool ok = true;
  if (out_)
    out_->append(buffer_);
  else
    ok = WriteAll(fd_, buffer_, err);
  buffer_.clear();
  return ok;
}

bool ArchiveWriter::Add(const std::string& name, std::string_view bytes, uint32_t crc, std::string* err) {
  if (!ValidName(name)) {
    *err = "bad archive entry name '" + name + "'";
    return false;
  }
  ArchiveEntry e;
  e.name = name;
  e.header = pos_;
  e.size = bytes.size();
  e.crc = crc;
  DataStart(pos_, name.size(), &e.data);
  const size_t pad = size_t(e.data - pos_) - kLocalSize - name.size() - kLocalZip64 - 4;
  std::string h;
  h.reserve(size_t(e.data - pos_));
  Put32(&h, kLocalSig);
  Put16(&h, kVersion);
  Put16(&h, 0);  // flags
  Put16(&h, 0);  // stored
  Put16(&h, 0);  // time
  Put16(&h, kDosDate);
  Put32(&h, crc);
  Put32(&h, 0xFFFFFFFFu);
  Put32(&h, 0xFFFFFFFFu);
  Put16(&h, uint16_t(name.size()));
  Put16(&h, uint16_t(kLocalZip64 + 4 + pad));
  h += name;
  Put16(&h, kZip64Id);
  Put16(&h, 16);
  Put64(&h, e.size);
  Put64(&h, e.size);
  Put16(&h, kPadId);
  Put16(&h, uint16_t(pad));
  h.append(pad, '\0');
  if (!Write(h, err) || !Write(bytes, err)) return false;
  entries_.push_back(std::move(e));
  return true;
}

bool ArchiveWriter::Finish(std::string* err) {
  std::string d;
  const uint64_t dir_at = pos_;
  for (const ArchiveEntry& e : entries_) {
    Put32(&d, kCentralSig);
    Put16(&d, kVersion);  // made by: MS-DOS attributes, which we leave at 0
    Put16(&d, kVersion);
    Put16(&d, 0);
    Put16(&d, 0);
    Put16(&d, 0);
    Put16(&d, kDosDate);
    Put32(&d, e.crc);
    Put32(&d, 0xFFFFFFFFu);
    Put32(&d, 0xFFFFFFFFu);
    Put16(&d, uint16_t(e.name.size()));
    Put16(&d, uint16_t(kCentralZip64));
    Put16(&d, 0);  // comment
    Put16(&d, 0);  // disk
    Put16(&d, 0);  // internal attributes
    Put32(&d, 0);  // external attributes
    Put32(&d, 0xFFFFFFFFu);
    d += e.name;
    Put16(&d, kZip64Id);
    Put16(&d, 24);
    Put64(&d, e.size);
    Put64(&d, e.size);
    Put64(&d, e.header);
  }
  const uint64_t end64_at = dir_at + d.size();
  Put32(&d, kEnd64Sig);
  Put64(&d, kEnd64Size - 12);
  Put16(&d, kVersion);
  Put16(&d, kVersion);
  Put32(&d, 0);
  Put32(&d, 0);
  Put64(&d, entries_.size());
  Put64(&d, entries_.size());
  Put64(&d, end64_at - dir_at);
  Put64(&d, dir_at);
  Put32(&d, kLocator64Sig);
  Put32(&d, 0);
  Put64(&d, end64_at);
  Put32(&d, 1);
  Put32(&d, kEndSig);
  Put16(&d, 0);
  Put16(&d, 0);
  Put16(&d, 0xFFFF);
  Put16(&d, 0xFFFF);
  Put32(&d, 0xFFFFFFFFu);
  Put32(&d, 0xFFFFFFFFu);
  Put16(&d, 0);
  return Write(d, err) && Flush(err);
}

}  // namespace cautograd
