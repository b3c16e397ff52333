// Sequence alignment, the base of diff's node and op matching.
#include <gtest/gtest.h>

#include "lib/diff/align.h"

namespace cautograd {
namespace {

Alignment Pairs(std::initializer_list<std::pair<int64_t, int64_t>> pairs) { return Alignment(pairs); }

TEST(Align, IdenticalSequencesPairEveryElement) {
  EXPECT_EQ(Align({1, 2, 3}, {1, 2, 3}), Pairs({{0, 0}, {1, 1}, {2, 2}}));
  EXPECT_TRUE(Align({}, {}).empty());
  EXPECT_TRUE(Align({1, 2}, {}).empty());
}

TEST(Align, AnInsertionLeavesEverythingElsePaired) {
  EXPECT_EQ(Align({1, 2, 3, 4}, {1, 2, 9, 9, 3, 4}), Pairs({{0, 0}, {1, 1}, {2, 4}, {3, 5}}));
  EXPECT_EQ(Align({1, 2, 9, 3}, {1, 2, 3}), Pairs({{0, 0}, {1, 1}, {3, 2}}));
}

TEST(Align, FindsTheLongestCommonSubsequence) {
  // Myers' own example: ABCABBA vs CBABAC has an LCS of length 4.
  const std::vector<int> a = {'A', 'B', 'C', 'A', 'B', 'B', 'A'}, b = {'C', 'B', 'A', 'B', 'A', 'C'};
  bool exact = false;
  const Alignment pairs = Align(a, b, kDefaultMaxEdits, &exact);
  EXPECT_TRUE(exact);
  ASSERT_EQ(pairs.size(), 4u);
  for (size_t k = 0; k < pairs.size(); ++k) {
    EXPECT_EQ(a[size_t(pairs[k].first)], b[size_t(pairs[k].second)]);
    if (k) {
      EXPECT_LT(pairs[k - 1].first, pairs[k].first);
      EXPECT_LT(pairs[k - 1].second, pairs[k].second);
    }
  }
}

TEST(Align, LongSequencesWithFewDifferencesAlignExactly) {
  std::vector<int> a(200000), b;
  for (size_t i = 0; i < a.size(); ++i) a[i] = int(i % 7);
  b = a;
  b.insert(b.begin() + 100000, {42, 43});
  b.erase(b.begin() + 150000);
  bool exact = false;
  const Alignment pairs = Align(a, b, kDefaultMaxEdits, &exact);
  EXPECT_TRUE(exact);
  EXPECT_EQ(pairs.size(), a.size() - 1);
}

TEST(Align, PastTheEditBudgetPairsGreedilyAndSaysSo) {
  std::vector<int> a, b;
  for (int i = 0; i < 300; ++i) {
    a.push_back(i);
    b.push_back(i % 2 ? i : 1000 + i);  // every other element differs
  }
  bool exact = true;
  const Alignment pairs = Align(a, b, 10, &exact);
  EXPECT_FALSE(exact);
  EXPECT_EQ(pairs.size(), 150u);
  for (const auto& [i, j] : pairs) EXPECT_EQ(a[size_t(i)], b[size_t(j)]);
}

}  // namespace
}  // namespace cautograd
