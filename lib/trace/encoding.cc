#include "lib/trace/encoding.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include <zlib.h>
#include <zstd.h>

namespace cautograd {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table;
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}

}  // namespace

std::string Base64Encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(const std::string& text, std::string* bytes) {
  static const std::array<int8_t, 256> kTable = MakeDecodeTable();
  if (text.size() % 4 != 0) return false;
  bytes->clear();
  bytes->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int pad = 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=') {
        // Padding only in the last group, and only at its end.
        if (i + 4 != text.size() || k < 2) return false;
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad) return false;
      int8_t d = kTable[static_cast<uint8_t>(c)];
      if (d < 0) return false;
      v = (v << 6) | uint32_t(d);
    }
    bytes->push_back(char(v >> 16));
    if (pad < 2) bytes->push_back(char((v >> 8) & 0xFF));
    if (pad < 1) bytes->push_back(char(v & 0xFF));
  }
  return true;
}

uint32_t Crc32(const char* data, size_t size) {
  // zlib's, in chunks its 32-bit length can take.
  uLong c = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data);
  while (size > 0) {
    const uInt n = uInt(std::min<size_t>(size, size_t(1) << 30));
    c = crc32(c, p, n);
    p += n;
    size -= n;
  }
  return uint32_t(c);
}

bool CompressIfWorthIt(std::string_view raw, std::string* frame) {
  if (raw.empty()) return false;
  frame->resize(ZSTD_compressBound(raw.size()));
  const size_t size = ZSTD_compress(&(*frame)[0], frame->size(), raw.data(), raw.size(), 3);
  if (ZSTD_isError(size) || size > raw.size() / 8 * 7) return false;
  frame->resize(size);
  return true;
}

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::string Crc32Hex(const std::string& bytes) { return Hex32(Crc32(bytes)); }

bool ParseHex32(const std::string& text, uint32_t* v) {
  if (text.size() != 8) return false;
  uint32_t out = 0;
  for (char c : text) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    out = out << 4 | uint32_t(d);
  }
  *v = out;
  return true;
}

}  // namespace cautograd
