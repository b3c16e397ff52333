// Decoding recorded values without libtorch, and the tolerance rule replay
// and diff share.
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "lib/trace/tolerance.h"
#include "lib/trace/value_data.h"

namespace cautograd {
namespace {

Value Raw(const std::string& dtype, int64_t numel, const std::string& bytes) {
  Value v;
  v.dtype = dtype;
  v.numel = numel;
  v.data = bytes;
  return v;
}

template <typename T>
std::string Bytes(std::initializer_list<T> items) {
  std::string out;
  for (T item : items)
    out.append(reinterpret_cast<const char*>(&item), sizeof item);  // the test host is little-endian
  return out;
}

std::vector<double> Elements(const Value& v) {
  std::vector<double> out;
  EXPECT_TRUE(ValueElements(v, &out));
  return out;
}

TEST(ValueElements, DecodesEveryRealDtype) {
  EXPECT_EQ(Elements(Raw("float32", 2, Bytes<float>({1.5f, -2}))), (std::vector<double>{1.5, -2}));
  EXPECT_EQ(Elements(Raw("float64", 1, Bytes<double>({0.1}))), (std::vector<double>{0.1}));
  EXPECT_EQ(Elements(Raw("int64", 2, Bytes<int64_t>({-3, int64_t(1) << 40}))),
            (std::vector<double>{-3, double(int64_t(1) << 40)}));
  EXPECT_EQ(Elements(Raw("int32", 1, Bytes<int32_t>({-7}))), (std::vector<double>{-7}));
  EXPECT_EQ(Elements(Raw("int16", 1, Bytes<int16_t>({-300}))), (std::vector<double>{-300}));
  EXPECT_EQ(Elements(Raw("int8", 2, std::string("\xff\x05", 2))), (std::vector<double>{-1, 5}));
  EXPECT_EQ(Elements(Raw("uint8", 1, std::string("\xff", 1))), (std::vector<double>{255}));
  EXPECT_EQ(Elements(Raw("bool", 2, std::string("\x01\x00", 2))), (std::vector<double>{1, 0}));
  EXPECT_EQ(Elements(Raw("complex64", 1, Bytes<float>({1, -1}))), (std::vector<double>{1, -1}));
}

TEST(ValueElements, WidensHalfAndBfloatExactly) {
  // float16: 1.0 = 0x3c00, -2.5 = 0xc100, smallest subnormal 0x0001 = 2^-24, inf 0x7c00.
  const std::vector<double> half =
      Elements(Raw("float16", 4, Bytes<uint16_t>({0x3c00, 0xc100, 0x0001, 0x7c00})));
  EXPECT_EQ(half[0], 1.0);
  EXPECT_EQ(half[1], -2.5);
  EXPECT_EQ(half[2], std::ldexp(1.0, -24));
  EXPECT_TRUE(std::isinf(half[3]));
  EXPECT_TRUE(std::isnan(Elements(Raw("float16", 1, Bytes<uint16_t>({0x7e00})))[0]));
  // bfloat16 is a float32's upper half: 0x3fc0 = 1.5, 0xc000 = -2.
  EXPECT_EQ(Elements(Raw("bfloat16", 2, Bytes<uint16_t>({0x3fc0, 0xc000}))), (std::vector<double>{1.5, -2}));
}

TEST(ValueElements, RefusesBytesThatDoNotFit) {
  std::vector<double> out;
  EXPECT_FALSE(ValueElements(Raw("float32", 2, std::string(4, '\0')), &out));
  EXPECT_FALSE(ValueElements(Raw("float8", 1, std::string(1, '\0')), &out));
}

TEST(Tolerance, DefaultsByDtypeAndOverridesExceptForIntegers) {
  EXPECT_DOUBLE_EQ(DefaultTolerance("float32").rtol, 1.3e-6);
  EXPECT_DOUBLE_EQ(DefaultTolerance("bfloat16").rtol, 1.6e-2);
  const Tolerance loose = ResolveTolerance("float32", 0.1, -1);
  EXPECT_DOUBLE_EQ(loose.rtol, 0.1);
  EXPECT_DOUBLE_EQ(loose.atol, 1e-5);
  const Tolerance exact = ResolveTolerance("int64", 0.1, 0.1);
  EXPECT_EQ(exact.rtol, 0);
  EXPECT_EQ(exact.atol, 0);
}

TEST(Tolerance, NanMatchesNanAndInfinitiesMatchThemselves) {
  const Tolerance t = DefaultTolerance("float32");
  EXPECT_TRUE(WithinTolerance(NAN, NAN, t));
  EXPECT_TRUE(WithinTolerance(INFINITY, INFINITY, t));
  EXPECT_FALSE(WithinTolerance(-INFINITY, INFINITY, t));
  EXPECT_FALSE(WithinTolerance(1, NAN, t));
  EXPECT_TRUE(WithinTolerance(1 + 1e-6, 1, t));
  EXPECT_FALSE(WithinTolerance(1.001, 1, t));
}

}  // namespace
}  // namespace cautograd
