#include "lib/trace/trace_io.h"

#include <cstdio>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "lib/trace/summary.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

// Keeps the writer's field order, so a dumped document reads as a written
// trace does (record by record, see StreamingReader in trace_io.cc).
using json = nlohmann::ordered_json;

TEST(TraceIo, RoundTripIsExact) {
  Trace trace = SmallTrace();
  std::string text = SerializeTrace(trace);
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTrace(text, "t.json", &back, &err)) << err;
  EXPECT_EQ(SerializeTrace(back), text);
  ASSERT_EQ(back.calls.size(), 1u);
  EXPECT_EQ(back.calls[0].values[0].data, std::string("\x00\x00\x80\x3f", 4));
  EXPECT_TRUE(back.calls[0].nodes[2].seq_is_max);
  EXPECT_EQ(back.calls[0].nodes[2].seq, UINT64_MAX);
  EXPECT_EQ(back.meta.seed, std::optional<uint64_t>(7));
  EXPECT_TRUE(back.calls[0].ops[0].args[1].is_size);
}

// Readers must not depend on the layout: sorted keys put calls before
// format, guards before nodes and ops before tensors.
TEST(TraceIo, ReadsFieldsInAnyOrder) {
  const std::string text = SerializeTrace(SmallTrace());
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTrace(nlohmann::json::parse(text).dump(), "t.json", &back, &err)) << err;
  EXPECT_EQ(SerializeTrace(back), text);
  // One call's sections out of order while the others stream.
  json two = json::parse(SerializeTrace(SmallTrace()));
  two["calls"].push_back(two["calls"][0]);
  two["calls"][1]["index"] = 1;
  json moved = two["calls"][1]["storages"];
  two["calls"][1].erase("storages");
  two["calls"][1]["storages"] = moved;
  ASSERT_TRUE(ParseTrace(two.dump(), "t.json", &back, &err)) << err;
  ASSERT_EQ(back.calls.size(), 2u);
  EXPECT_EQ(back.calls[1].storages.size(), back.calls[0].storages.size());
  EXPECT_EQ(back.calls[1].ops.size(), back.calls[0].ops.size());
  EXPECT_EQ(back.calls[1].guards.sizes.size(), back.calls[0].guards.sizes.size());
}

TEST(TraceIo, NonFiniteFloatsSurvive) {
  Trace trace = SmallTrace();
  trace.calls[0].ops[1].args.push_back(Arg::Float(-INFINITY));
  trace.calls[0].ops[1].arg_names.push_back("alpha");
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTrace(SerializeTrace(trace), "t.json", &back, &err)) << err;
  EXPECT_EQ(back.calls[0].ops[1].args[2].f, -INFINITY);
}

// Each case breaks the small trace in one way; the reader must refuse it
// with one line naming the file, the JSON path and the problem.
struct Broken {
  const char* name;
  std::function<void(json&)> mutate;
  const char* expected;  // substring of the one-line error
};

TEST(TraceIo, RefusesBrokenTracesWithPathAndReason) {
  const std::vector<Broken> cases = {
      {"newer version", [](json& j) { j["version"] = 99; },
       "t.json: version: trace version 99 but this cautograd reads versions 1 and 2; upgrade cautograd"},
      {"older version", [](json& j) { j["version"] = 0; }, "trace version 0 is not one cautograd ever wrote"},
      {"version 2 as bare JSON", [](json& j) { j["version"] = 2; },
       "version 2 traces are archives, and this is bare JSON"},
      {"not a trace", [](json& j) { j["format"] = "chrome-trace"; }, "format: not a cautograd trace"},
      {"wrong type", [](json& j) { j["calls"][0]["ops"][1]["args"][0]["tensor"] = "x"; },
       "calls[0].ops[1].args[0].tensor: expected an integer, found a string"},
      {"dangling tensor", [](json& j) { j["calls"][0]["ops"][1]["args"][1]["tensor"] = 99; },
       "calls[0].ops[1].args[1].tensor: tensor 99 is not in this call's tensors"},
      {"dangling edge", [](json& j) { j["calls"][0]["nodes"][0]["next"][0]["node"] = 7; },
       "calls[0].nodes[0].next[0].node: node 7 is not in this call's nodes"},
      {"edge to missing input", [](json& j) { j["calls"][0]["nodes"][0]["next"][0]["input"] = 3; },
       "calls[0].nodes[0].next[0].input: input 3 of node 1, which has 1 inputs"},
      {"cycle",
       [](json& j) {
         j["calls"][0]["nodes"][2]["next"] = json::array({{{"node", 0}, {"input", 0}}});
       },
       "closes a cycle"},
      {"absurd size", [](json& j) { j["calls"][0]["tensors"][2]["shape"][0] = int64_t(1) << 45; },
       "calls[0].tensors[2].shape[0]: absurd size"},
      {"negative size", [](json& j) { j["calls"][0]["tensors"][2]["shape"][0] = -1; },
       "calls[0].tensors[2].shape[0]: absurd size -1"},
      {"past storage", [](json& j) { j["calls"][0]["tensors"][2]["offset"] = 100; },
       "calls[0].tensors[2]: tensor reaches past the end of storage 2"},
      // (65537 - 1) * 2^48 is 2^64: it wrapped to 0, and an 8-byte storage passed.
      {"stride times size wraps",
       [](json& j) {
         j["calls"][0]["tensors"][2]["shape"] = json::array({65537});
         j["calls"][0]["tensors"][2]["strides"] = json::array({int64_t(1) << 48});
       },
       "calls[0].tensors[2]: tensor reaches past the end of storage 2"},
      {"unknown layout", [](json& j) { j["calls"][0]["tensors"][2]["layout"] = "origami"; },
       "calls[0].tensors[2].layout: unknown layout 'origami'"},
      {"sparse with a storage", [](json& j) { j["calls"][0]["tensors"][2]["layout"] = "sparse_coo"; },
       "calls[0].tensors[2].storage: a sparse_coo tensor has no storage of its own"},
      {"sparse_dim on a strided tensor", [](json& j) { j["calls"][0]["tensors"][2]["sparse_dim"] = 1; },
       "calls[0].tensors[2].sparse_dim: sparse_dim 1 for a strided tensor"},
      {"skipped call without its fields", [](json& j) { j["skipped"] = json::array({{{"program_call", 1}}}); },
       "skipped[0]: missing field 'process'"},
      {"missing field", [](json& j) { j["calls"][0]["tensors"][1].erase("dtype"); },
       "calls[0].tensors[1]: missing field 'dtype'"},
      {"unknown dtype", [](json& j) { j["calls"][0]["tensors"][1]["dtype"] = "float8"; },
       "unknown dtype 'float8'"},
      {"bad checksum", [](json& j) { j["calls"][0]["values"][0]["crc32"] = "00000000"; },
       "calls[0].values[0].crc32: checksum 00000000 does not match the data"},
      {"bad base64", [](json& j) { j["calls"][0]["values"][0]["data"] = "%%%%"; },
       "calls[0].values[0].data: invalid base64"},
      {"value size", [](json& j) { j["calls"][0]["values"][0]["numel"] = 2; },
       "calls[0].values[0].numel: 2 elements but tensor 0 has 1"},
      {"ids out of order", [](json& j) { j["calls"][0]["tensors"][1]["id"] = 5; },
       "calls[0].tensors[1].id: tensor id 5 at position 1"},
      {"op without namespace", [](json& j) { j["calls"][0]["ops"][0]["op"] = "mm"; },
       "calls[0].ops[0].op: operator 'mm' has no namespace"},
      {"empty argument",
       [](json& j) {
         j["calls"][0]["ops"][0]["args"][0] = {{"name", "self"}};
       },
       "calls[0].ops[0].args[0]: argument has no value"},
      {"exec order", [](json& j) { j["calls"][0]["nodes"][1]["exec_order"] = -1; },
       "exec_order must be >= 0 exactly when the node executed"},
      {"guard op", [](json& j) { j["calls"][0]["guards"]["scalars"][0]["op"] = 40; },
       "calls[0].guards.scalars[0].op: op 40 is not in this call's ops"},
      {"call index", [](json& j) { j["calls"][0]["index"] = 3; },
       "calls[0].index: call index 3 at position 0"},
      {"top level", [](json& j) { j = json::array(); },
       "t.json: (top level): expected an object, found an array"},
      {"call not an object", [](json& j) { j["calls"].push_back(5); },
       "calls[1]: expected an object, found an integer"},
      {"call an array", [](json& j) { j["calls"].push_back(json::array()); },
       "calls[1]: expected an object, found an array"},
      {"section not an array", [](json& j) { j["calls"][0]["ops"] = 3; },
       "calls[0].ops: expected an array, found an integer"},
      {"section missing", [](json& j) { j["calls"][0].erase("values"); }, "calls[0]: missing field 'values'"},
  };
  const json valid = json::parse(SerializeTrace(SmallTrace()));
  for (const Broken& c : cases) {
    json j = valid;
    c.mutate(j);
    // In the writer's order records are checked as they are read; with
    // sorted keys the reader checks the whole document: the same message.
    for (const std::string& text : {j.dump(), nlohmann::json::parse(j.dump()).dump()}) {
      Trace trace;
      std::string err;
      EXPECT_FALSE(ParseTrace(text, "t.json", &trace, &err)) << c.name;
      EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": got '" << err << "'";
      EXPECT_EQ(err.find('\n'), std::string::npos) << c.name << ": not one line";
      EXPECT_EQ(err.rfind("t.json: ", 0), 0u) << c.name << ": does not name the file";
    }
  }
}

TEST(TraceIo, TruncatedFileSaysSo) {
  std::string text = SerializeTrace(SmallTrace());
  Trace trace;
  std::string err;
  EXPECT_FALSE(ParseTrace(text.substr(0, text.size() / 2), "t.json", &trace, &err));
  EXPECT_NE(err.find("t.json: not valid JSON: truncated"), std::string::npos) << err;
  EXPECT_FALSE(ParseTrace("", "t.json", &trace, &err));
  EXPECT_NE(err.find("truncated or empty"), std::string::npos) << err;
}

TEST(TraceIo, AtomicWriteReplacesAndLeavesNoTemporary) {
  char dir[] = "/tmp/cautograd_io_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/t.json";
  std::string err;
  ASSERT_TRUE(WriteFileAtomic(path, "old", &err)) << err;
  ASSERT_TRUE(WriteTraceFile(path, SmallTrace(), &err)) << err;
  Trace back;
  ASSERT_TRUE(ReadTraceFile(path, &back, &err)) << err;
  EXPECT_EQ(back.calls.size(), 1u);
  // Writing into a directory that does not exist fails cleanly.
  EXPECT_FALSE(WriteTraceFile(std::string(dir) + "/missing/t.json", SmallTrace(), &err));
  EXPECT_NE(err.find("cannot write"), std::string::npos) << err;
  std::remove(path.c_str());
  EXPECT_EQ(rmdir(dir), 0) << "a temporary file was left behind";
}

TEST(TraceIo, SkippedCallsAndLayoutsRoundTrip) {
  Trace trace = SmallTrace();
  SkippedCall skipped;
  skipped.program_call = 3;
  skipped.process = 4242;
  skipped.reason = "backward call 3: at node 'X' (op 'aten::y'): a nested tensor";
  skipped.start_unix_s = 12.5;
  trace.skipped.push_back(skipped);
  TensorInfo& t = trace.calls[0].tensors[2];
  t.layout = "sparse_coo";
  t.sparse_dim = 1;
  t.storage = -1;
  std::string text = SerializeTrace(trace);
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTrace(text, "t.json", &back, &err)) << err;
  EXPECT_EQ(SerializeTrace(back), text);
  ASSERT_EQ(back.skipped.size(), 1u);
  EXPECT_EQ(back.skipped[0].program_call, 3);
  EXPECT_EQ(back.skipped[0].process, 4242);
  EXPECT_EQ(back.skipped[0].reason, skipped.reason);
  EXPECT_EQ(back.calls[0].tensors[2].layout, "sparse_coo");
  EXPECT_EQ(back.calls[0].tensors[2].sparse_dim, 1);
  // A trace with neither writes neither: traces from before them read the same.
  std::string plain = SerializeTrace(SmallTrace());
  EXPECT_EQ(plain.find("\"skipped\""), std::string::npos);
  EXPECT_EQ(plain.find("\"layout\""), std::string::npos);
}

// Hostile numbers and nesting are refused in one line, never a crash.
TEST(TraceIo, HostileNumbersAndNestingAreRefused) {
  std::string text = SerializeTrace(SmallTrace());
  size_t at = text.find("\"duration_us\":");
  ASSERT_NE(at, std::string::npos);
  std::string overflow = text;
  overflow.insert(at + 14, "1e999,\"x\":");
  Trace back;
  std::string err;
  EXPECT_FALSE(ParseTrace(overflow, "t.json", &back, &err));
  EXPECT_NE(err.find("t.json: not a readable trace: number overflow parsing '1e999'"), std::string::npos) << err;
  const std::vector<std::pair<std::string, std::string>> places = {
      {"{\"format\": ", "}"}, {"{\"format\": \"cautograd-trace\", \"meta\": {\"x\": ", "}}"}};
  for (const auto& [head, tail] : places) {
    std::string deep = head + std::string(200000, '[') + std::string(200000, ']') + tail;
    EXPECT_FALSE(ParseTrace(deep, "t.json", &back, &err));
    EXPECT_EQ(err, "t.json: (top level): nested deeper than 128 levels; no cautograd trace does");
  }
}

TEST(TraceIo, SizesSaturateInsteadOfWrapping) {
  EXPECT_EQ(SaturatingAdd(INT64_MAX - 1, 5), INT64_MAX);
  EXPECT_EQ(SaturatingAdd(INT64_MIN + 1, -5), INT64_MIN);
  EXPECT_EQ(SaturatingAdd(2, 3), 5);
  Trace trace = SmallTrace();
  for (int i = 0; i < 8193; ++i)
    trace.calls[0].storages.push_back({int64_t(trace.calls[0].storages.size()), int64_t(1) << 50, "cpu"});
  TraceSummary s = Summarize(trace);
  EXPECT_EQ(s.calls[0].tensor_bytes, INT64_MAX);
}

TEST(TraceIo, MissingFileIsOneLine) {
  Trace trace;
  std::string err;
  EXPECT_FALSE(ReadTraceFile("/nonexistent/t.json", &trace, &err));
  EXPECT_EQ(err, "/nonexistent/t.json: cannot open: No such file or directory");
}

}  // namespace
}  // namespace cautograd
