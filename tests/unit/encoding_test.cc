#include "lib/trace/encoding.h"

#include <gtest/gtest.h>

namespace cautograd {
namespace {

TEST(Base64, KnownVectors) {
  // RFC 4648, section 10.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, RoundTripsEveryByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(char(i));
  for (size_t len : {0, 1, 2, 3, 4, 255, 256}) {
    std::string in = bytes.substr(0, len), out;
    ASSERT_TRUE(Base64Decode(Base64Encode(in), &out));
    EXPECT_EQ(out, in) << "length " << len;
  }
}

TEST(Base64, RejectsMalformedText) {
  std::string out;
  EXPECT_FALSE(Base64Decode("Zg=", &out));       // bad length
  EXPECT_FALSE(Base64Decode("Z!==", &out));      // outside the alphabet
  EXPECT_FALSE(Base64Decode("Zg==Zm9v", &out));  // padding in the middle
  EXPECT_FALSE(Base64Decode("Z===", &out));      // too much padding
  EXPECT_FALSE(Base64Decode("Zm=v", &out));      // data after padding
}

TEST(Crc32, KnownCheckValue) {
  // The standard check value of CRC-32/ISO-HDLC.
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32Hex("123456789"), "cbf43926");
  EXPECT_EQ(Crc32Hex(""), "00000000");
}

}  // namespace
}  // namespace cautograd
