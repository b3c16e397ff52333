#include "lib/trace/call_filter.h"

#include <gtest/gtest.h>

namespace cautograd {
namespace {

CallFilter Parsed(const std::string& text) {
  CallFilter f;
  std::string err;
  EXPECT_TRUE(CallFilter::Parse(text, &f, &err)) << err;
  return f;
}

TEST(CallFilter, AllByDefault) {
  CallFilter f;
  EXPECT_TRUE(f.Selects(0));
  EXPECT_TRUE(f.Selects(12345));
  EXPECT_TRUE(Parsed("all").Selects(7));
}

TEST(CallFilter, SingleRangeEveryAndLists) {
  CallFilter one = Parsed("3");
  EXPECT_FALSE(one.Selects(2));
  EXPECT_TRUE(one.Selects(3));
  EXPECT_FALSE(one.Selects(4));

  CallFilter range = Parsed("2-5");
  EXPECT_FALSE(range.Selects(1));
  EXPECT_TRUE(range.Selects(2));
  EXPECT_TRUE(range.Selects(5));
  EXPECT_FALSE(range.Selects(6));

  CallFilter every = Parsed("every:10");
  EXPECT_TRUE(every.Selects(0));
  EXPECT_FALSE(every.Selects(9));
  EXPECT_TRUE(every.Selects(20));

  CallFilter list = Parsed("0,4-5");
  EXPECT_TRUE(list.Selects(0));
  EXPECT_FALSE(list.Selects(3));
  EXPECT_TRUE(list.Selects(5));
}

TEST(CallFilter, BadTextNamesThePart) {
  CallFilter f;
  std::string err;
  for (const char* bad : {"5-2", "x", "every:0", "1,,2", "-3", "every:"}) {
    EXPECT_FALSE(CallFilter::Parse(bad, &f, &err)) << bad;
    EXPECT_NE(err.find("bad call selection"), std::string::npos) << err;
  }
  EXPECT_FALSE(CallFilter::Parse("1,5-2", &f, &err));
  EXPECT_NE(err.find("'5-2'"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
