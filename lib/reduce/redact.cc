#include "lib/reduce/redact.h"

#include <cstring>
#include <random>

#include "lib/trace/human.h"

namespace cautograd {

namespace {

// IEEE half, rounded to nearest even.
uint16_t ToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp >= 31) return uint16_t(sign | 0x7c00u);  // normal draws never get here
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) ++half;
  return uint16_t(half);
}

uint16_t ToBfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fffu + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

template <typename T>
void Put(std::string* out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out->append(raw, sizeof(T));
}

bool IsFloating(const std::string& dtype) {
  return dtype == "float32" || dtype == "float64" || dtype == "float16" || dtype == "bfloat16" ||
         dtype == "complex64" || dtype == "complex128";
}

uint64_t Mix(uint64_t seed, uint64_t v) {
  uint64_t z = seed ^ (v + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string ValueWhat(const Call& call, const Value& v) {
  const TensorInfo& t = call.tensors[size_t(v.tensor)];
  std::string what = "call " + std::to_string(call.index) + ", ";
  what += v.when == Value::When::kFirstUse ? "input" : v.when == Value::When::kEnd ? "final value" : "output of op " + std::to_string(v.op);
  what += " t" + std::to_string(v.tensor) + (t.name.empty() ? "" : " (" + t.name + ")");
  return what + ", " + t.dtype + ", " + HumanBytes(v.nbytes());
}

}  // namespace

bool RandomValueBytes(const std::string& dtype, int64_t numel, uint64_t seed, std::string* bytes) {
  if (!IsFloating(dtype) || numel < 0) return false;
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const bool complex = dtype.rfind("complex", 0) == 0;
  const int64_t draws = complex ? 2 * numel : numel;
  bytes->clear();
  bytes->reserve(size_t(draws) * 8);
  for (int64_t i = 0; i < draws; ++i) {
    const double d = normal(gen);
    if (dtype == "float64" || dtype == "complex128")
      Put(bytes, d);
    else if (dtype == "float32" || dtype == "complex64")
      Put(bytes, float(d));
    else if (dtype == "float16")
      Put(bytes, ToHalf(float(d)));
    else
      Put(bytes, ToBfloat16(float(d)));
  }
  return true;
}

void Redact(Trace* trace, uint64_t seed, const std::function<bool(const Trace&)>& holds, RedactReport* report) {
  *report = RedactReport();
  struct Slot {
    size_t call, value;
    std::string random;
  };
  std::vector<Slot> slots;
  for (size_t c = 0; c < trace->calls.size(); ++c) {
    for (size_t i = 0; i < trace->calls[c].values.size(); ++i) {
      const Value& v = trace->calls[c].values[i];
      if (!IsFloating(v.dtype)) {
        ++report->integral;
        report->integral_bytes += v.nbytes();
        continue;
      }
      Slot s{c, i, {}};
      const uint64_t where = (uint64_t(trace->calls[c].index) << 40) ^ (uint64_t(v.tensor) << 20) ^
                             (uint64_t(v.op + 2) << 2) ^ uint64_t(v.when);
      RandomValueBytes(v.dtype, v.numel, Mix(seed, where), &s.random);
      slots.push_back(std::move(s));
    }
  }
  std::vector<bool> replaced(slots.size(), false);
  auto swap_in = [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      Value& v = trace->calls[slots[k].call].values[slots[k].value];
      std::swap(v.data, slots[k].random);
      replaced[k] = !replaced[k];
    }
  };
  // Values from here on are held in memory and stored plain.
  for (const Slot& s : slots) {
    Value& v = trace->calls[s.call].values[s.value];
    v.has_data = true;
    v.stored.reset();
    v.zstd = false;
    v.spooled = -1;
  }
  // Replacing [begin, end): kept if the condition holds, else undone and
  // tried by halves.
  std::function<void(size_t, size_t)> attempt = [&](size_t begin, size_t end) {
    if (begin >= end) return;
    swap_in(begin, end);
    ++report->tests;
    if (holds(*trace)) return;
    swap_in(begin, end);  // back to the recorded values
    if (end - begin == 1) return;
    const size_t mid = begin + (end - begin) / 2;
    attempt(begin, mid);
    attempt(mid, end);
  };
  attempt(0, slots.size());
  for (size_t k = 0; k < slots.size(); ++k) {
    const Call& call = trace->calls[slots[k].call];
    const Value& v = call.values[slots[k].value];
    if (replaced[k]) {
      ++report->replaced;
      report->replaced_bytes += v.nbytes();
    } else {
      ++report->kept;
      report->kept_bytes += v.nbytes();
      report->kept_what.push_back(ValueWhat(call, v));
    }
  }
}

}  // namespace cautograd
