// Pairs up two sequences as a line diff does: the longest common
// subsequence of their keys. Used by diff to match nodes (in execution
// order) and ops (within a node), so an inserted layer or op shows as added
// and everything around it still pairs with its counterpart.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace cautograd {

// (i, j) pairs with a[i] == b[j], increasing in both i and j.
using Alignment = std::vector<std::pair<int64_t, int64_t>>;

// Myers' O((N+M)·D) algorithm after trimming the common prefix and suffix,
// so two long sequences that differ in a few places align in linear time.
// Past `max_edits` differences (D) it stops looking for the longest common
// subsequence and pairs equal keys greedily in order instead, which keeps
// time and memory bounded (the exact search needs O(D²) memory) on
// sequences that have little in common; *exact says which it did.
constexpr int64_t kDefaultMaxEdits = 2000;
Alignment Align(const std::vector<int>& a, const std::vector<int>& b, int64_t max_edits = kDefaultMaxEdits,
                bool* exact = nullptr);

}  // namespace cautograd
