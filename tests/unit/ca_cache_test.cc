// Compiled autograd's cache on its own keys (SimulateRealCache), and the
// trace's compiled_autograd block read back and refused when it lies, on
// hand-built calls of y = (w * x).sum(): NodeCall 0 is GraphRoot, then
// SumBackward0, MulBackward0 and AccumulateGrad(w).
#include <gtest/gtest.h>

#include "lib/recompile/ca_cache.h"
#include "lib/recompile/reason_text.h"
#include "lib/trace/trace_io.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

CaNode KeyNode(int64_t node, const std::string& type, int64_t key_size, uint64_t hash,
               std::vector<CaSize> sizes = {}) {
  CaNode n;
  n.node = node;
  n.id = 0;
  n.type = type;
  n.key_size = key_size;
  n.key_hash = hash;
  n.sizes = std::move(sizes);
  return n;
}

CaSize EdgeSize(int64_t value, int64_t edge, int64_t dim) {
  CaSize s;
  s.value = value;
  s.origin = CaSize::Origin::kEdge;
  s.edge = edge;
  s.dim = dim;
  return s;
}

const Node& Typed(const Call& call, const std::string& type) {
  for (const Node& n : call.nodes)
    if (n.type == type) return n;
  ADD_FAILURE() << "no " << type;
  return call.nodes[0];
}

// The small call with compiled autograd's key: `batch` is the size
// SumBackward0 checks the gradient it passes to MulBackward0 against;
// `grad_key` is AccumulateGrad's key size (22 while .grad is undefined,
// 33 once it is defined, as in real runs).
Call WithKey(int64_t batch, int64_t grad_key = 22) {
  Call call = SmallTrace().calls[0];
  CompiledAutogradKey& key = call.compiled_autograd;
  key.ran = CompiledAutogradKey::Ran::kEager;
  key.nodes.push_back(KeyNode(-1, "torch::autograd::GraphRoot", 39, 0x10));
  key.nodes.push_back(KeyNode(Typed(call, "SumBackward0").id, "SumBackward0", 27, 0x20, {EdgeSize(batch, 0, 0)}));
  key.nodes.push_back(KeyNode(Typed(call, "MulBackward0").id, "MulBackward0", 40, 0x30));
  key.nodes.push_back(KeyNode(Typed(call, "torch::autograd::AccumulateGrad").id, "torch::autograd::AccumulateGrad",
                              grad_key, uint64_t(grad_key)));
  for (size_t i = 0; i < key.nodes.size(); ++i) key.nodes[i].id = int64_t(i);
  return call;
}

CacheSimulation RunCache(std::vector<Call>* store, DynamicMode mode) {
  std::vector<CacheCall> calls;
  for (size_t i = 0; i < store->size(); ++i) {
    (*store)[i].index = int64_t(i);
    calls.push_back({"t.json", &(*store)[i]});
  }
  EXPECT_TRUE(HaveRealKeys(calls));
  return SimulateRealCache(calls, mode);
}

TEST(RealCache, FirstCallLogsGraphRootAndSameKeysHit) {
  std::vector<Call> calls = {WithKey(4), WithKey(4)};
  CacheSimulation sim = RunCache(&calls, DynamicMode::kAuto);
  EXPECT_EQ(sim.keys, "compiled_autograd");
  ASSERT_EQ(sim.calls.size(), 2u);
  EXPECT_FALSE(sim.calls[0].hit);
  ASSERT_EQ(sim.calls[0].log.size(), 1u);
  EXPECT_EQ(sim.calls[0].log[0],
            "Cache miss due to new autograd node: torch::autograd::GraphRoot (NodeCall 0) with key size 39, "
            "previous key sizes=[]");
  EXPECT_TRUE(sim.calls[1].hit);
  EXPECT_TRUE(sim.calls[1].log.empty());
}

TEST(RealCache, KeyChangeNamesTheNodeItsSizeAndThePreviousSizes) {
  std::vector<Call> calls = {WithKey(4, 22), WithKey(4, 33), WithKey(4, 33)};
  CacheSimulation sim = RunCache(&calls, DynamicMode::kAuto);
  ASSERT_FALSE(sim.calls[1].hit);
  EXPECT_EQ(sim.calls[1].log,
            std::vector<std::string>{"Cache miss due to new autograd node: torch::autograd::AccumulateGrad "
                                     "(NodeCall 3) with key size 33, previous key sizes=[22]"});
  const MissReason& why = sim.calls[1].reasons[0];
  EXPECT_EQ(why.kind, MissReason::Kind::kKey);
  EXPECT_EQ(why.node_call, 3);
  EXPECT_EQ(why.previous_key_sizes, std::vector<int64_t>{22});
  EXPECT_EQ(sim.entries.size(), 2u);
  EXPECT_TRUE(sim.calls[2].hit);
}

TEST(RealCache, ChangedSizeMissesOnceUnderAutoAndNeverUnderAll) {
  std::vector<Call> calls = {WithKey(4), WithKey(2), WithKey(7)};
  CacheSimulation sim = RunCache(&calls, DynamicMode::kAuto);
  EXPECT_FALSE(sim.calls[1].hit);
  EXPECT_EQ(sim.calls[1].log,
            std::vector<std::string>{"Cache miss due to 1 changed tensor shapes (total of 1): sizes[0]"});
  const MissReason& why = sim.calls[1].reasons[0];
  EXPECT_EQ(why.kind, MissReason::Kind::kSize);
  EXPECT_EQ(ReasonText(why),
            "sizes[0] = dim 0 of the gradient SumBackward0 (NodeCall 1) passes to MulBackward0 (NodeCall 2): "
            "4 -> 2, now dynamic");
  EXPECT_TRUE(sim.calls[2].hit);  // dynamic now
  ASSERT_EQ(sim.entries.size(), 1u);
  EXPECT_EQ(sim.entries[0].compiles, 2);
  EXPECT_EQ(sim.entries[0].sizes[0].seen, (std::vector<int64_t>{4, 2, 7}));

  std::vector<Call> again = {WithKey(4), WithKey(2), WithKey(7)};
  CacheSimulation all = RunCache(&again, DynamicMode::kAll);
  EXPECT_FALSE(all.calls[0].hit);
  EXPECT_TRUE(all.calls[1].hit);
  EXPECT_TRUE(all.calls[2].hit);
}

TEST(RealCache, ForcedStaticSizeMissesEvenWhenSizesStartDynamic) {
  std::vector<Call> calls = {WithKey(4), WithKey(2)};
  for (Call& c : calls) c.compiled_autograd.nodes[1].sizes[0].forced_static = true;
  CacheSimulation sim = RunCache(&calls, DynamicMode::kAll);
  EXPECT_FALSE(sim.calls[1].hit);
}

TEST(RealCache, UnsupportedCallIsNamedWithCompiledAutogradsMessage) {
  std::vector<Call> calls = {WithKey(4)};
  calls[0].compiled_autograd.error = "compiled_args not implemented: torch::autograd::DelayedError";
  calls[0].compiled_autograd.error_at = 2;
  CacheSimulation sim = RunCache(&calls, DynamicMode::kAuto);
  ASSERT_EQ(sim.calls[0].reasons.size(), 1u);
  EXPECT_EQ(sim.calls[0].reasons[0].kind, MissReason::Kind::kUnsupported);
  EXPECT_NE(ReasonText(sim.calls[0].reasons[0]).find("DelayedError"), std::string::npos);
}

TEST(RealCache, CallsWithoutKeysAreNotRealKeys) {
  Call plain = SmallTrace().calls[0];
  std::vector<CacheCall> calls = {{"t.json", &plain}};
  EXPECT_FALSE(HaveRealKeys(calls));
}

TEST(CompiledAutogradBlock, RoundTripsThroughTheTraceFile) {
  Trace trace = SmallTrace();
  trace.calls[0] = WithKey(4);
  trace.calls[0].compiled_autograd.nodes[0].key_hash = 0xfedcba9876543210ull;
  trace.calls[0].compiled_autograd.nodes[1].sizes[0].forced_static = true;
  const std::string text = SerializeTrace(trace);
  EXPECT_NE(text.find("\"source\":\"compiled_autograd\""), std::string::npos);
  Trace back;
  std::string err;
  ASSERT_TRUE(ParseTrace(text, "t.json", &back, &err)) << err;
  EXPECT_EQ(SerializeTrace(back), text);
  const CompiledAutogradKey& key = back.calls[0].compiled_autograd;
  EXPECT_EQ(key.ran, CompiledAutogradKey::Ran::kEager);
  ASSERT_EQ(key.nodes.size(), 4u);
  EXPECT_EQ(key.nodes[0].key_hash, 0xfedcba9876543210ull);
  EXPECT_TRUE(key.nodes[1].sizes[0].forced_static);
  EXPECT_EQ(key.nodes[1].sizes[0].origin, CaSize::Origin::kEdge);
}

// Each lie in the block is refused with the path to it.
TEST(CompiledAutogradBlock, RefusesWhatDoesNotFitTheCall) {
  Trace trace = SmallTrace();
  trace.calls[0] = WithKey(4);
  const std::string good = SerializeTrace(trace);
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {"\"key_hash\":\"0000000000000010\"", "\"key_hash\":\"10\"",
       "calls[0].compiled_autograd.nodes[0].key_hash: expected 16 lowercase hex digits"},
      {"\"key_size\":39", "\"key_size\":70000", "nodes[0].key_size: compiled autograd's keys hold at most 65535"},
      {"\"ran\":\"eager\"", "\"ran\":\"sometimes\"", "compiled_autograd.ran: expected"},
      {"\"error_at\":-1", "\"error_at\":2", "compiled_autograd.error_at: expected -1"},
      {"\"from\":\"edge\"", "\"from\":\"nowhere\"", "sizes[0].from: expected"},
      {"\"edge\":0", "\"edge\":9", "sizes[0].edge: node"},
  };
  for (const Case& c : cases) {
    std::string text = good;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    Trace back;
    std::string err;
    EXPECT_FALSE(ParseTrace(text, "t.json", &back, &err)) << c.to;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
  // A node id that is not one of the call's.
  std::string text = good;
  const std::string sum = "\"type\":\"SumBackward0\"";
  size_t at = text.find(sum, text.find("\"compiled_autograd\":{"));
  ASSERT_NE(at, std::string::npos);
  size_t node = text.rfind("\"node\":", at);
  text.replace(node, text.find(',', node) - node, "\"node\":99");
  Trace back;
  std::string err;
  EXPECT_FALSE(ParseTrace(text, "t.json", &back, &err));
  EXPECT_NE(err.find("expected -1 or a node of this call"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
