#include "lib/recorder/flat_map.h"

#include <gtest/gtest.h>

#include <vector>

namespace cautograd {
namespace {

TEST(FlatMap, FindsWhatWasInsertedThroughGrowthAndClear) {
  std::vector<int> objects(5000);
  FlatMap<const int*, int64_t, PointerHash> map;
  for (int round = 0; round < 3; ++round) {
    // Each round inserts a different number of keys, so some rounds grow
    // the table and others reuse what clear() kept.
    size_t n = round == 1 ? 100 : objects.size();
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(map.Insert(&objects[i], int64_t(i) + round), int64_t(i) + round);
    EXPECT_EQ(map.size(), n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t* found = map.Find(&objects[i]);
      ASSERT_NE(found, nullptr) << i;
      EXPECT_EQ(*found, int64_t(i) + round);
    }
    for (size_t i = n; i < objects.size(); ++i) EXPECT_FALSE(map.Contains(&objects[i])) << i;
    map.clear();
    EXPECT_EQ(map.size(), 0u);
    EXPECT_FALSE(map.Contains(&objects[0]));
  }
}

TEST(FlatMap, InsertKeepsTheFirstValue) {
  FlatMap<std::pair<uint64_t, uint64_t>, int64_t, PairHash> map;
  EXPECT_EQ(map.Insert({7, 1}, 10), 10);
  EXPECT_EQ(map.Insert({7, 1}, 20), 10);
  EXPECT_EQ(map.Insert({7, 2}, 30), 30);  // same sequence number, other thread
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(*map.Find({7, 2}), 30);
  EXPECT_EQ(map.Find({8, 1}), nullptr);
}

TEST(FlatMap, ReserveMakesRoomWithoutLosingEntries) {
  std::vector<int> objects(40);
  FlatMap<const int*, int64_t, PointerHash> map;
  for (size_t i = 0; i < 20; ++i) map.Insert(&objects[i], int64_t(i));
  map.reserve(1000);
  for (size_t i = 0; i < 20; ++i) ASSERT_NE(map.Find(&objects[i]), nullptr);
  EXPECT_EQ(map.Find(&objects[30]), nullptr);
}

}  // namespace
}  // namespace cautograd
