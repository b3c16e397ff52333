#include "lib/diff/align.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>

namespace cautograd {

namespace {

// Myers' greedy forward search over a[0, n) and b[0, m), then a walk back
// through the frontier it kept per edit count. Returns false past
// max_edits.
bool Myers(const int* a, int64_t n, const int* b, int64_t m, int64_t max_edits, Alignment* out) {
  const int64_t limit = std::min(n + m, max_edits);
  const int64_t offset = limit + 1;
  std::vector<int64_t> v(size_t(2 * offset + 1), 0);
  // frontier[d] holds v[k] for k in [-d, d] after round d: enough to walk
  // back, in O(D²) rather than O((N+M)·D) memory.
  std::vector<std::vector<int32_t>> frontier;
  int64_t found = -1;
  for (int64_t d = 0; d <= limit && found < 0; ++d) {
    for (int64_t k = -d; k <= d; k += 2) {
      int64_t x = (k == -d || (k != d && v[size_t(offset + k - 1)] < v[size_t(offset + k + 1)]))
                      ? v[size_t(offset + k + 1)]
                      : v[size_t(offset + k - 1)] + 1;
      int64_t y = x - k;
      while (x < n && y < m && a[x] == b[y]) ++x, ++y;
      v[size_t(offset + k)] = x;
      if (x >= n && y >= m) found = d;
    }
    frontier.emplace_back(v.begin() + (offset - d), v.begin() + (offset + d + 1));
  }
  if (found < 0) return false;
  Alignment reversed;
  int64_t x = n, y = m;
  for (int64_t d = found; d >= 0; --d) {
    const int64_t k = x - y;
    int64_t prev_x = 0, prev_y = 0;
    if (d > 0) {
      const std::vector<int32_t>& prev = frontier[size_t(d - 1)];  // k in [-(d-1), d-1]
      auto at = [&](int64_t kk) { return int64_t(prev[size_t(kk + d - 1)]); };
      const int64_t prev_k = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
      prev_x = at(prev_k);
      prev_y = prev_x - prev_k;
    }
    // The snake of round d runs diagonally from just after the edit to (x, y).
    const int64_t start_x = d == 0 ? 0 : (x - y == prev_x - prev_y + 1 ? prev_x + 1 : prev_x);
    while (x > start_x && y > 0) {
      --x, --y;
      reversed.emplace_back(x, y);
    }
    x = prev_x;
    y = prev_y;
  }
  out->assign(reversed.rbegin(), reversed.rend());
  return true;
}

// In order, each a[i] pairs with the next unpaired b[j] of the same key, if
// one comes within a window of the last pair: linear, and good enough for
// sequences too different to align exactly.
Alignment Greedy(const int* a, int64_t n, const int* b, int64_t m) {
  constexpr int64_t kWindow = 64;
  std::unordered_map<int, std::vector<int64_t>> where;  // key -> positions in b
  for (int64_t j = 0; j < m; ++j) where[b[j]].push_back(j);
  std::unordered_map<int, size_t> next;  // key -> first candidate in where[key]
  Alignment out;
  int64_t cursor = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto it = where.find(a[i]);
    if (it == where.end()) continue;
    const std::vector<int64_t>& positions = it->second;
    size_t& p = next[a[i]];
    while (p < positions.size() && positions[p] < cursor) ++p;
    if (p == positions.size() || positions[p] - cursor > kWindow) continue;
    out.emplace_back(i, positions[p]);
    cursor = positions[p] + 1;
  }
  return out;
}

}  // namespace

Alignment Align(const std::vector<int>& a, const std::vector<int>& b, int64_t max_edits, bool* exact) {
  const int64_t n = int64_t(a.size()), m = int64_t(b.size());
  int64_t prefix = 0;
  while (prefix < n && prefix < m && a[size_t(prefix)] == b[size_t(prefix)]) ++prefix;
  int64_t suffix = 0;
  while (suffix < n - prefix && suffix < m - prefix && a[size_t(n - 1 - suffix)] == b[size_t(m - 1 - suffix)])
    ++suffix;
  Alignment out;
  for (int64_t i = 0; i < prefix; ++i) out.emplace_back(i, i);
  const int* pa = a.data() + prefix;
  const int* pb = b.data() + prefix;
  const int64_t na = n - prefix - suffix, nb = m - prefix - suffix;
  Alignment middle;
  const bool found = Myers(pa, na, pb, nb, max_edits, &middle);
  if (!found) middle = Greedy(pa, na, pb, nb);
  if (exact) *exact = found;
  for (const auto& [i, j] : middle) out.emplace_back(i + prefix, j + prefix);
  for (int64_t s = suffix; s > 0; --s) out.emplace_back(n - s, m - s);
  return out;
}

}  // namespace cautograd
