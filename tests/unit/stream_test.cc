// Stream files: a process's calls written by a thread of its own, read back
// whole, or up to the last whole call when the process died mid-way.
#include "lib/trace/stream.h"

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <unistd.h>

#include "lib/trace/trace_io.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cautograd_stream_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(system(("rm -rf " + dir_).c_str()), 0); }

  // SmallTrace's call number `n`, its one value (n + 1 as a float) handed
  // to the stream as the recorder hands it.
  static Trace OneCall(StreamWriter* s, int n) {
    Trace t = SmallTrace();
    Value& v = t.calls[0].values[0];
    float f = float(n + 1);
    v.spooled = s->AddValue(std::string(reinterpret_cast<const char*>(&f), 4));
    v.data.clear();
    v.has_data = false;
    t.calls[0].start_unix_s = n;
    return t;
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir_;
};

TEST_F(StreamTest, CallsComeBackWithTheirValues) {
  const std::string path = dir_ + "/1.stream";
  std::string err;
  {
    StreamWriter s;
    ASSERT_TRUE(s.Open(path, false, StreamWriter::kDefaultBudget, &err)) << err;
    for (int n = 0; n < 3; ++n) s.AddCall(OneCall(&s, n));
    SkippedCall skipped;
    skipped.reason = "backward call 3: a nested tensor";
    Trace k;
    k.meta = SmallTrace().meta;
    k.skipped.push_back(skipped);
    s.AddCall(k);
    EXPECT_TRUE(s.WaitForCalls(30));
    EXPECT_EQ(s.calls_written(), 4);
    ASSERT_TRUE(s.Close(&err)) << err;
  }
  std::vector<Call> calls;
  std::vector<SkippedCall> skipped;
  Meta meta;
  ASSERT_TRUE(ReadStream(path, &calls, &skipped, &meta, &err)) << err;
  ASSERT_EQ(calls.size(), 3u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].reason, "backward call 3: a nested tensor");
  for (int n = 0; n < 3; ++n) {
    std::string bytes;
    ASSERT_TRUE(ReadValueBytes(calls[size_t(n)], calls[size_t(n)].values[0], &bytes, &err)) << err;
    float f = float(n + 1);
    EXPECT_EQ(bytes, std::string(reinterpret_cast<const char*>(&f), 4));
  }
  // A closed stream is a whole archive, and the calls make a trace that
  // writes and reads back like any other.
  Trace trace;
  trace.meta = meta;
  trace.calls = calls;
  for (size_t i = 0; i < trace.calls.size(); ++i) trace.calls[i].index = int64_t(i);
  ASSERT_TRUE(WriteTraceFile(dir_ + "/t.cag", trace, &err)) << err;
  Trace back;
  ASSERT_TRUE(ReadTraceFile(dir_ + "/t.cag", &back, &err)) << err;
  ASSERT_EQ(back.calls.size(), 3u);
  EXPECT_EQ(back.calls[2].values[0].data.size(), 4u);
}

// What a process that dies leaves: no directory, perhaps half an entry.
// Every call whose JSON is whole comes back; none that is not.
TEST_F(StreamTest, ACutStreamKeepsEveryWholeCall) {
  const std::string path = dir_ + "/2.stream";
  std::string err, after_two;
  StreamWriter s;
  ASSERT_TRUE(s.Open(path, false, StreamWriter::kDefaultBudget, &err)) << err;
  s.AddCall(OneCall(&s, 0));
  s.AddCall(OneCall(&s, 1));
  ASSERT_TRUE(s.WaitForCalls(30));  // what a fatal signal's handler waits for
  OneCall(&s, 2);                   // its value is handed over, the call never ends
  // The two calls are in the file, whatever happens next.
  after_two = Slurp(path);
  int64_t last = -1;
  for (size_t keep = after_two.size(); keep + 1 > 0 && keep <= after_two.size(); keep -= 7) {
    const std::string cut = dir_ + "/cut.stream";
    std::ofstream(cut, std::ios::binary | std::ios::trunc) << after_two.substr(0, keep);
    std::vector<Call> calls;
    std::vector<SkippedCall> skipped;
    Meta meta;
    ASSERT_TRUE(ReadStream(cut, &calls, &skipped, &meta, &err)) << keep << ": " << err;
    if (keep == after_two.size()) {
      EXPECT_GE(calls.size(), 2u);  // the third call's value may be there too, never its call
      EXPECT_LE(calls.size(), 2u);
    }
    if (last >= 0) {
      EXPECT_LE(int64_t(calls.size()), last) << "cutting more cannot give more calls";
    }
    last = int64_t(calls.size());
    for (const Call& c : calls) {
      std::string bytes;
      EXPECT_TRUE(ReadValueBytes(c, c.values[0], &bytes, &err)) << keep << ": " << err;
    }
    if (keep < 7) break;
  }
  EXPECT_EQ(last, 0);
  ASSERT_TRUE(s.Close(&err)) << err;
}

// A budget smaller than one value: the program waits for the writer, value
// by value, and nothing is lost or stuck.
TEST_F(StreamTest, ATinyBudgetMakesTheProgramWaitNotFail) {
  const std::string path = dir_ + "/3.stream";
  std::string err;
  StreamWriter s;
  ASSERT_TRUE(s.Open(path, true, 1, &err)) << err;
  for (int n = 0; n < 50; ++n) s.AddCall(OneCall(&s, n));
  ASSERT_TRUE(s.Close(&err)) << err;
  std::vector<Call> calls;
  std::vector<SkippedCall> skipped;
  Meta meta;
  ASSERT_TRUE(ReadStream(path, &calls, &skipped, &meta, &err)) << err;
  EXPECT_EQ(calls.size(), 50u);
}

// Cut short is not damaged: a stream whose middle is overwritten says so
// rather than quietly giving fewer calls.
TEST_F(StreamTest, DamageInTheMiddleIsAnError) {
  const std::string path = dir_ + "/5.stream";
  std::string err;
  {
    StreamWriter s;
    ASSERT_TRUE(s.Open(path, false, StreamWriter::kDefaultBudget, &err)) << err;
    for (int n = 0; n < 3; ++n) s.AddCall(OneCall(&s, n));
    ASSERT_TRUE(s.Close(&err)) << err;
  }
  std::string bytes = Slurp(path);
  const size_t second = bytes.find("PK\x03\x04", 1);
  ASSERT_NE(second, std::string::npos);
  bytes[second + 1] = 'X';
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  std::vector<Call> calls;
  std::vector<SkippedCall> skipped;
  Meta meta;
  EXPECT_FALSE(ReadStream(path, &calls, &skipped, &meta, &err));
  EXPECT_NE(err.find("damaged at byte " + std::to_string(second) + " (not a local header)"), std::string::npos)
      << err;
}

// A process that records nothing (a compile worker) leaves a stream of
// end records only.
TEST_F(StreamTest, AStreamWithNoCallIsEmptyNotDamaged) {
  const std::string path = dir_ + "/6.stream";
  std::string err;
  {
    StreamWriter s;
    ASSERT_TRUE(s.Open(path, false, StreamWriter::kDefaultBudget, &err)) << err;
    ASSERT_TRUE(s.Close(&err)) << err;
  }
  std::vector<Call> calls;
  std::vector<SkippedCall> skipped;
  Meta meta;
  ASSERT_TRUE(ReadStream(path, &calls, &skipped, &meta, &err)) << err;
  EXPECT_TRUE(calls.empty());
}

TEST_F(StreamTest, AnExistingFileIsNotOverwritten) {
  const std::string path = dir_ + "/4.stream";
  std::ofstream(path) << "someone else's";
  StreamWriter s;
  std::string err;
  EXPECT_FALSE(s.Open(path, false, StreamWriter::kDefaultBudget, &err));
  EXPECT_NE(err.find("cannot create"), std::string::npos) << err;
  EXPECT_EQ(Slurp(path), "someone else's");
}

}  // namespace
}  // namespace cautograd
