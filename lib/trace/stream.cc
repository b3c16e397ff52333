#include "lib/trace/stream.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <ctime>

#include <fcntl.h>
#include <unistd.h>

#include "lib/trace/encoding.h"
#include "lib/trace/trace_json.h"

namespace cautograd {

namespace {
constexpr uint64_t kMaxStreamEntries = uint64_t(1) << 24;
}  // namespace

StreamWriter::~StreamWriter() {
  std::string ignored;
  Close(&ignored);
}

bool StreamWriter::Open(const std::string& path, bool compress, int64_t budget, std::string* err) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *err = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  compress_ = compress;
  budget_ = budget;
  archive_ = std::make_unique<ArchiveWriter>(fd_);
  thread_ = std::thread([this] { Run(); });
  return true;
}

int64_t StreamWriter::AddValue(std::string bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t id = next_value_++;
  if (closing_ || !error_.empty()) return id;  // dropped; the error is reported once
  const int64_t n = int64_t(bytes.size());
  // Waiting with the queue empty would wait forever: a value larger than the
  // whole budget goes alone.
  changed_.wait(lock, [&] { return queue_.empty() || queued_bytes_ + n <= budget_ || !error_.empty() || closing_; });
  if (closing_ || !error_.empty()) return id;
  queued_bytes_ += n;
  Item item;
  item.value = id;
  item.bytes = std::move(bytes);
  queue_.push_back(std::move(item));
  changed_.notify_all();
  return id;
}

void StreamWriter::AddCall(Trace one_call) {
  auto call = std::make_shared<Trace>(std::move(one_call));
  AddCall([call] { return std::move(*call); });
}

void StreamWriter::AddCall(std::function<Trace()> make) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_ || !error_.empty()) return;
  ++calls_queued_;
  Item item;
  item.make = std::move(make);
  queue_.push_back(std::move(item));
  changed_.notify_all();
}

bool StreamWriter::WaitForCalls(double seconds) const {
  const timespec step{0, 1000000};  // 1 ms
  for (double waited = 0; calls_written_.load() < calls_queued_.load(); waited += 0.001) {
    if (waited >= seconds) return false;
    nanosleep(&step, nullptr);
  }
  return true;
}

void StreamWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty()) break;  // closing, and nothing left
    Item item = std::move(queue_.front());
    queue_.pop_front();
    const bool failed = !error_.empty();
    lock.unlock();
    if (!failed) {
      // Nothing may escape this thread: it would end the program.
      try {
        if (item.value >= 0) {
          WriteValue(item.value, item.bytes);
        } else {
          item.call = item.make();
          WriteCall(item.call);
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> relock(mu_);
        if (error_.empty()) error_ = std::string("the stream's writer failed: ") + e.what();
        if (item.value < 0) ++calls_written_;
      }
    } else if (item.value < 0) {
      ++calls_written_;  // dropped, but no longer waited for
    }
    const int64_t n = int64_t(item.bytes.size());
    item = Item();  // the bytes go before the budget says they have
    lock.lock();
    queued_bytes_ -= n;
    changed_.notify_all();
  }
}

void StreamWriter::WriteValue(int64_t id, const std::string& bytes) {
  Stored s;
  s.entry = "values/" + std::to_string(id);
  s.crc = Crc32(bytes);
  std::string_view out = bytes;
  uint32_t entry_crc = s.crc;
  std::string frame;
  if (compress_ && CompressIfWorthIt(bytes, &frame)) {
    out = frame;
    entry_crc = Crc32(frame);
    s.zstd = true;
  }
  std::string why;
  if (!archive_->Add(s.entry, out, entry_crc, &why)) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = why;
    return;
  }
  stored_[id] = std::move(s);
}

void StreamWriter::WriteCall(Trace& trace) {
  std::vector<StoredRef> refs;
  std::string why;
  bool ok = error().empty();
  for (Call& call : trace.calls) {
    for (Value& v : call.values) {
      if (!ok) break;
      if (v.spooled < 0) {  // kept in memory: written now, before the call that names it
        {
          std::lock_guard<std::mutex> lock(mu_);
          v.spooled = next_value_++;
        }
        WriteValue(v.spooled, v.data);
      }
      auto it = stored_.find(v.spooled);
      if (it == stored_.end()) {
        ok = false;
        why = "a value of call " + std::to_string(call.index) + " was never written";
        break;
      }
      refs.push_back({it->second.entry, it->second.crc, it->second.zstd});
      stored_.erase(it);  // each value is named by one call only
    }
  }
  if (ok) {
    const std::string json = SerializeTraceJson(trace, &refs);
    ok = archive_->Add("calls/" + std::to_string(calls_written_.load()) + ".json", json, Crc32(json), &why) && archive_->Flush(&why);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok && error_.empty()) error_ = why;
  ++calls_written_;
}

bool StreamWriter::Close(std::string* err) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || fd_ < 0) {
      *err = error_;
      return error_.empty();
    }
    closing_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::string why;
  bool ok = error_.empty() && archive_->Finish(&why);
  if (::close(fd_) != 0 && ok) {
    ok = false;
    why = std::string("close failed: ") + std::strerror(errno);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok && error_.empty()) error_ = why;
  closed_ = true;
  *err = error_;
  return error_.empty();
}

std::string StreamWriter::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

int64_t StreamWriter::calls_written() const { return calls_written_.load(); }

bool ReadStream(const std::string& path, std::vector<Call>* calls, std::vector<SkippedCall>* skipped, Meta* meta,
                std::string* err) {
  auto src = std::make_shared<FileSource>();
  if (!src->Open(path, err)) return false;
  std::vector<ArchiveEntry> entries;
  std::string why;
  if (!ScanArchive(*src, kMaxStreamEntries, &entries, &why)) {
    *err = path + ": " + why;
    return false;
  }
  ArchiveIndex index;
  index.entries = &entries;
  index.used.assign(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].name.compare(0, 7, "values/") == 0 && !index.by_name.emplace(entries[i].name, i).second) {
      *err = path + ": entry '" + entries[i].name + "' appears twice";
      return false;
    }
  }
  std::string text;
  for (const ArchiveEntry& e : entries) {
    if (e.name.compare(0, 6, "calls/") != 0) continue;
    if (!ReadArchiveEntry(*src, e, &text, &why)) {
      *err = path + ": " + why;
      return false;
    }
    Trace one;
    if (!ParseTraceJson(text, path + ": " + e.name, &index, &one, err)) return false;
    if (meta->tool_version.empty()) *meta = one.meta;
    for (Call& call : one.calls) {
      call.value_source = src;
      calls->push_back(std::move(call));
    }
    for (SkippedCall& s : one.skipped) skipped->push_back(std::move(s));
  }
  return true;
}

}  // namespace cautograd
