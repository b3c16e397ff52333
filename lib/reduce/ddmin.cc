#include "lib/reduce/ddmin.h"

#include <algorithm>

namespace cautograd {

namespace {

// Runs `test` on `candidate`; true (and *items the candidate as grown)
// when it holds and is smaller than *items.
bool Accept(std::vector<int64_t> candidate, const DeltaTest& test, std::vector<int64_t>* items) {
  if (!test(&candidate) || candidate.size() >= items->size()) return false;
  *items = std::move(candidate);
  return true;
}

}  // namespace

std::vector<int64_t> DeltaDebug(std::vector<int64_t> items, const DeltaTest& test) {
  size_t n = 2;
  while (items.size() >= 2) {
    n = std::min(n, items.size());
    // Chunk i is items [begin(i), begin(i + 1)).
    auto begin = [&](size_t i) { return items.size() * i / n; };
    bool reduced = false;
    for (size_t i = 0; i < n && !reduced; ++i) {
      std::vector<int64_t> chunk(items.begin() + long(begin(i)), items.begin() + long(begin(i + 1)));
      if (Accept(std::move(chunk), test, &items)) {
        n = 2;
        reduced = true;
      }
    }
    for (size_t i = 0; i < n && !reduced && n > 2; ++i) {
      std::vector<int64_t> rest(items.begin(), items.begin() + long(begin(i)));
      rest.insert(rest.end(), items.begin() + long(begin(i + 1)), items.end());
      if (Accept(std::move(rest), test, &items)) {
        n = std::max<size_t>(n - 1, 2);
        reduced = true;
      }
    }
    if (reduced) continue;
    if (n >= items.size()) break;
    n = std::min(n * 2, items.size());
  }
  // The last item may not be needed at all.
  if (items.size() == 1) Accept({}, test, &items);
  return items;
}

}  // namespace cautograd
