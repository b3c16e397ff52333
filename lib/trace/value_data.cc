#include "lib/trace/value_data.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace cautograd {

namespace {

// Little-endian bytes to an unsigned integer, independent of the host's order.
template <typename U>
U LoadLittle(const unsigned char* p) {
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v |= U(p[i]) << (8 * i);
  return v;
}

double FromBits32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double FromBits64(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits.
double HalfToDouble(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(mantissa, -24);  // subnormal
  else if (exponent == 31)
    magnitude = mantissa ? NAN : INFINITY;
  else
    magnitude = std::ldexp(mantissa + 1024, exponent - 25);
  return sign ? -magnitude : magnitude;
}

// bfloat16 is the upper half of a float32.
double BfloatToDouble(uint16_t b) { return FromBits32(uint32_t(b) << 16); }

// Decodes `count` scalars of `bytes` bytes each with `decode`.
template <typename F>
void DecodeAll(const unsigned char* p, size_t count, size_t bytes, F decode, std::vector<double>* out) {
  for (size_t i = 0; i < count; ++i, p += bytes) out->push_back(decode(p));
}

}  // namespace

bool ValueElements(const Value& value, std::vector<double>* out) {
  out->clear();
  const std::string& d = value.dtype;
  const int size = DtypeSize(d);
  if (size == 0 || value.numel < 0 || value.data.size() != size_t(value.numel) * size_t(size)) return false;
  const bool complex = d == "complex64" || d == "complex128";
  const size_t n = size_t(value.numel) * (complex ? 2 : 1);
  const size_t bytes = complex ? size_t(size) / 2 : size_t(size);
  out->reserve(n);
  const auto* p = reinterpret_cast<const unsigned char*>(value.data.data());
  using P = const unsigned char*;
  if (d == "float32" || d == "complex64")
    DecodeAll(
        p, n, bytes, [](P q) { return FromBits32(LoadLittle<uint32_t>(q)); }, out);
  else if (d == "float64" || d == "complex128")
    DecodeAll(
        p, n, bytes, [](P q) { return FromBits64(LoadLittle<uint64_t>(q)); }, out);
  else if (d == "float16")
    DecodeAll(
        p, n, bytes, [](P q) { return HalfToDouble(LoadLittle<uint16_t>(q)); }, out);
  else if (d == "bfloat16")
    DecodeAll(
        p, n, bytes, [](P q) { return BfloatToDouble(LoadLittle<uint16_t>(q)); }, out);
  else if (d == "int64")
    DecodeAll(
        p, n, bytes, [](P q) { return double(int64_t(LoadLittle<uint64_t>(q))); }, out);
  else if (d == "int32")
    DecodeAll(
        p, n, bytes, [](P q) { return double(int32_t(LoadLittle<uint32_t>(q))); }, out);
  else if (d == "int16")
    DecodeAll(
        p, n, bytes, [](P q) { return double(int16_t(LoadLittle<uint16_t>(q))); }, out);
  else if (d == "int8")
    DecodeAll(
        p, n, bytes, [](P q) { return double(int8_t(*q)); }, out);
  else if (d == "uint8")
    DecodeAll(
        p, n, bytes, [](P q) { return double(*q); }, out);
  else if (d == "bool")
    DecodeAll(
        p, n, bytes, [](P q) { return *q ? 1.0 : 0.0; }, out);
  else
    return false;
  return true;
}

}  // namespace cautograd
