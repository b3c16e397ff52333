// Format version 2: the archive around the JSON, values read only when
// asked, compression, and what the reader refuses.
#include <gtest/gtest.h>

#include "lib/trace/archive.h"
#include "lib/trace/encoding.h"
#include "lib/trace/trace_io.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

// SmallTrace with a 4096-element value of `fill` bytes on tensor 0.
Trace TraceWithBigValue(char fill) {
  Trace trace = SmallTrace();
  Call& call = trace.calls[0];
  TensorInfo& t = call.tensors[0];
  t.shape = {4096};
  t.strides = {1};
  t.offset = 0;
  call.storages[size_t(t.storage)].nbytes = 4096 * 4;
  call.values[0].numel = 4096;
  call.values[0].data.assign(4096 * 4, fill);
  return trace;
}

std::string Archive(const Trace& trace, bool compress = false) {
  WriteOptions options;
  options.compress = compress;
  std::string bytes, err;
  EXPECT_TRUE(SerializeTraceArchive(trace, options, &bytes, &err)) << err;
  return bytes;
}

TEST(TraceV2, RoundTripsToTheSameTrace) {
  const std::string bytes = Archive(SmallTrace());
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTraceBytes(bytes, "t.cag", &back, &err)) << err;
  EXPECT_EQ(back.version, 2);
  EXPECT_EQ(SerializeTrace(back), SerializeTrace(SmallTrace()));
  ASSERT_TRUE(back.calls[0].values[0].stored.has_value());
  EXPECT_EQ(back.calls[0].values[0].stored->data % kArchiveAlign, 0u);
  // What is written is read back, and written again byte for byte.
  EXPECT_EQ(Archive(back), bytes);
}

TEST(TraceV2, EveryEntryStartsItsDataOnA64ByteBoundary) {
  std::vector<ArchiveEntry> entries;
  std::string err;
  const std::string bytes = Archive(TraceWithBigValue(1));
  ASSERT_TRUE(ReadArchiveDirectory(MemorySource(bytes), 100, &entries, &err)) << err;
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "values/0");
  EXPECT_EQ(entries[1].name, "trace.json");
  for (const ArchiveEntry& e : entries) EXPECT_EQ(e.data % 64, 0u) << e.name;
}

TEST(TraceV2, ValuesAreNotReadUnlessAsked) {
  const std::string bytes = Archive(TraceWithBigValue(7));
  ReadOptions metadata_only;
  metadata_only.values = false;
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTraceBytes(bytes, "t.cag", &back, &err, metadata_only)) << err;
  EXPECT_FALSE(back.calls[0].values[0].has_data);
  EXPECT_TRUE(back.calls[0].values[0].data.empty());
  // Writing reads them then, from the file the call came from, one at a time.
  std::string out;
  ASSERT_TRUE(SerializeTraceArchive(back, WriteOptions(), &out, &err)) << err;
  EXPECT_EQ(out, bytes);
  std::string value;
  ASSERT_TRUE(ReadValueBytes(back.calls[0], back.calls[0].values[0], &value, &err)) << err;
  EXPECT_EQ(value, std::string(4096 * 4, '\x07'));
  // Without that file, there is nothing to write them from.
  back.calls[0].value_source.reset();
  EXPECT_FALSE(SerializeTraceArchive(back, WriteOptions(), &out, &err));
  EXPECT_NE(err.find("calls[0].values[0]: its bytes were not read"), std::string::npos) << err;
  // Corrupt bytes in a value go unnoticed without values, and are refused with them.
  std::string corrupt = bytes;
  ASSERT_NE(corrupt.find(std::string(64, '\x07')), std::string::npos);
  corrupt[corrupt.find(std::string(64, '\x07')) + 10] = 8;
  EXPECT_TRUE(ParseTraceBytes(corrupt, "t.cag", &back, &err, metadata_only)) << err;
  EXPECT_FALSE(ParseTraceBytes(corrupt, "t.cag", &back, &err));
  EXPECT_EQ(err, "t.cag: calls[0].values[0]: entry 'values/0': CRC-32 does not match its data; the file is corrupt");
}

TEST(TraceV2, CompressionKeepsOnlyWhatPays) {
  const std::string plain = Archive(TraceWithBigValue(0));
  const std::string packed = Archive(TraceWithBigValue(0), true);
  EXPECT_LT(packed.size() + 16000, plain.size());
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTraceBytes(packed, "t.cag", &back, &err)) << err;
  EXPECT_TRUE(back.calls[0].values[0].zstd);
  EXPECT_EQ(back.calls[0].values[0].data, std::string(4096 * 4, '\0'));
  // Bytes that do not compress are stored as they are.
  Trace noisy = TraceWithBigValue(0);
  uint32_t x = 12345;
  for (char& c : noisy.calls[0].values[0].data) c = char((x = x * 1103515245u + 12345u) >> 24);
  ASSERT_TRUE(ParseTraceBytes(Archive(noisy, true), "t.cag", &back, &err)) << err;
  EXPECT_FALSE(back.calls[0].values[0].zstd);
  EXPECT_EQ(back.calls[0].values[0].data, noisy.calls[0].values[0].data);
}

TEST(TraceV2, TruncatedAndTamperedArchivesAreRefusedInOneLine) {
  const std::string bytes = Archive(TraceWithBigValue(3));
  Trace back;
  std::string err;
  for (size_t keep : {size_t(0), size_t(10), bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_FALSE(ParseTraceBytes(bytes.substr(0, keep), "t.cag", &back, &err)) << keep;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    EXPECT_EQ(err.rfind("t.cag: ", 0), 0u) << err;
  }
  // Every single-byte change in the directory and end records is refused or harmless, never a crash.
  std::vector<ArchiveEntry> entries;
  ASSERT_TRUE(ReadArchiveDirectory(MemorySource(bytes), 100, &entries, &err)) << err;
  const size_t dir_at = size_t(entries.back().data + entries.back().size);
  for (size_t i = dir_at; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = char(bad[i] ^ 0x41);
    if (!ParseTraceBytes(bad, "t.cag", &back, &err)) {
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    }
  }
}

TEST(TraceV2, Crc32MatchesZlibsAtEveryLength) {
  // zlib's crc32 of "123456789" is the standard check value.
  EXPECT_EQ(Crc32(std::string("123456789")), 0xCBF43926u);
  // The eight-byte loop and the byte loop agree wherever the split falls.
  std::string data;
  for (int i = 0; i < 100; ++i) data.push_back(char(i * 37));
  for (size_t n = 0; n <= data.size(); ++n) {
    uint32_t bytewise = 0xFFFFFFFFu;
    for (size_t k = 0; k < n; ++k) {
      bytewise ^= uint8_t(data[k]);
      for (int b = 0; b < 8; ++b) bytewise = (bytewise & 1) ? 0xEDB88320u ^ (bytewise >> 1) : bytewise >> 1;
    }
    EXPECT_EQ(Crc32(data.data(), n), bytewise ^ 0xFFFFFFFFu) << n;
  }
}

}  // namespace
}  // namespace cautograd
