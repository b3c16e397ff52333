// The parts of `cautograd reduce` that need no libtorch: delta debugging,
// random values for redaction, the user's command.
#include <cmath>
#include <cstring>
#include <set>

#include <gtest/gtest.h>

#include "lib/reduce/ddmin.h"
#include "lib/reduce/redact.h"
#include "lib/reduce/run_command.h"

namespace cautograd {
namespace {

TEST(DeltaDebug, FindsTheTwoItemsThatMatter) {
  std::vector<int64_t> items;
  for (int64_t i = 0; i < 1000; ++i) items.push_back(i);
  int tests = 0;
  auto result = DeltaDebug(items, [&](std::vector<int64_t>* c) {
    ++tests;
    std::set<int64_t> s(c->begin(), c->end());
    return s.count(17) && s.count(742);
  });
  EXPECT_EQ(result, (std::vector<int64_t>{17, 742}));
  EXPECT_LT(tests, 200);  // far fewer than removing the 1,000 items one at a time
}

TEST(DeltaDebug, EmptyWhenNothingIsNeeded) {
  auto result = DeltaDebug({1, 2, 3}, [](std::vector<int64_t>*) { return true; });
  EXPECT_TRUE(result.empty());
}

TEST(DeltaDebug, KeepsEverythingWhenEveryItemIsNeeded) {
  std::vector<int64_t> items = {4, 5, 6, 7, 8};
  auto result = DeltaDebug(items, [&](std::vector<int64_t>* c) { return c->size() == items.size(); });
  EXPECT_EQ(result, items);
}

TEST(DeltaDebug, GoesOnFromWhatTheTestGrewTheCandidateTo) {
  // Item 9 needs 3 (as an op needs the op that made its input): the test
  // adds it, and the result keeps both.
  std::vector<int64_t> items;
  for (int64_t i = 0; i < 64; ++i) items.push_back(i);
  auto result = DeltaDebug(items, [](std::vector<int64_t>* c) {
    std::set<int64_t> s(c->begin(), c->end());
    if (s.count(9)) s.insert(3);
    c->assign(s.begin(), s.end());
    return s.count(9) > 0;
  });
  EXPECT_EQ(result, (std::vector<int64_t>{3, 9}));
}

TEST(Redact, RandomValuesAreSeededAndSized) {
  std::string a, b, c;
  ASSERT_TRUE(RandomValueBytes("float32", 100, 1, &a));
  ASSERT_TRUE(RandomValueBytes("float32", 100, 1, &b));
  ASSERT_TRUE(RandomValueBytes("float32", 100, 2, &c));
  EXPECT_EQ(a.size(), 400u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_TRUE(RandomValueBytes("complex128", 3, 1, &a));
  EXPECT_EQ(a.size(), 48u);
  ASSERT_TRUE(RandomValueBytes("bfloat16", 5, 1, &a));
  EXPECT_EQ(a.size(), 10u);
  EXPECT_FALSE(RandomValueBytes("int64", 4, 1, &a));
  EXPECT_FALSE(RandomValueBytes("bool", 4, 1, &a));
}

// Half-precision bits to a float, to check the encoder's rounding.
float FromHalf(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v = exp == 0 ? std::ldexp(float(mant), -24) : std::ldexp(float(mant | 0x400), exp - 25);
  return (h & 0x8000) ? -v : v;
}

TEST(Redact, HalvesAreNormalDraws) {
  std::string h, f;
  ASSERT_TRUE(RandomValueBytes("float16", 2000, 9, &h));
  ASSERT_TRUE(RandomValueBytes("float32", 2000, 9, &f));
  double sum = 0, sq = 0;
  for (size_t i = 0; i < 2000; ++i) {
    uint16_t bits;
    float full;
    std::memcpy(&bits, &h[2 * i], 2);
    std::memcpy(&full, &f[4 * i], 4);
    const float half = FromHalf(bits);
    // The same draw, to half precision: within half an ulp (2^-11 relative).
    EXPECT_NEAR(half, full, std::fabs(full) / 2048 + 1e-7) << i;
    sum += half;
    sq += double(half) * half;
  }
  EXPECT_NEAR(sum / 2000, 0, 0.1);
  EXPECT_NEAR(sq / 2000, 1, 0.15);
}

TEST(RunShell, SaysTheExitStatusAndQuotesThePath) {
  std::string err;
  EXPECT_EQ(SubstitutePath("cat {} {}", "a b'c"), "cat 'a b'\\''c' 'a b'\\''c'");
  CommandResult r = RunShell("exit 3", 10, "", &err);
  ASSERT_TRUE(r.ran) << err;
  EXPECT_EQ(r.status, 3);
  r = RunShell(SubstitutePath("test {} = \"a b'c\"", "a b'c"), 10, "", &err);
  EXPECT_EQ(r.status, 0);
  r = RunShell("kill -SEGV $$", 10, "", &err);
  EXPECT_EQ(r.status, 128 + 11);
}

TEST(RunShell, KillsACommandPastItsTimeout) {
  std::string err;
  // The sleep is the shell's child: the whole process group goes.
  CommandResult r = RunShell("sleep 30; exit 0", 0.2, "", &err);
  ASSERT_TRUE(r.ran) << err;
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.status, 0);
}

}  // namespace
}  // namespace cautograd
