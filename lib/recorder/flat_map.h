// A hash map for the recorder's hot path: keys are pointers or pairs of
// integers, values small, and a call inserts a few hundred entries and then
// drops them all. std::unordered_map allocates a node per entry and frees it
// again on clear(); this map keeps its entries in one array (open
// addressing, linear probing) and clear() keeps the array for the next call.
// No erase: the recorder never removes an entry during a call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace cautograd {

struct PointerHash {
  size_t operator()(const void* p) const {
    // Allocations are aligned: the low bits say nothing. Fibonacci hashing
    // spreads the rest over the table.
    return size_t((uint64_t(reinterpret_cast<uintptr_t>(p)) >> 4) * 0x9E3779B97F4A7C15ull >> 16);
  }
};

struct PairHash {
  size_t operator()(const std::pair<uint64_t, uint64_t>& k) const {
    return size_t((k.first * 0x9E3779B97F4A7C15ull ^ k.second) * 0xC2B2AE3D27D4EB4Full >> 16);
  }
};

template <typename K, typename V, typename Hash>
class FlatMap {
 public:
  // The value stored under `key`, or null.
  V* Find(const K& key) {
    if (size_ == 0) return nullptr;
    for (size_t i = Hash()(key) & mask_;; i = (i + 1) & mask_) {
      if (!used_[i]) return nullptr;
      if (slots_[i].first == key) return &slots_[i].second;
    }
  }
  const V* Find(const K& key) const { return const_cast<FlatMap*>(this)->Find(key); }
  bool Contains(const K& key) const { return Find(key) != nullptr; }

  // Inserts key -> value unless key is there; returns the value stored.
  V& Insert(const K& key, const V& value) {
    if ((size_ + 1) * 4 > used_.size() * 3) Grow(used_.empty() ? 16 : used_.size() * 2);
    for (size_t i = Hash()(key) & mask_;; i = (i + 1) & mask_) {
      if (!used_[i]) {
        used_[i] = 1;
        slots_[i] = {key, value};
        ++size_;
        return slots_[i].second;
      }
      if (slots_[i].first == key) return slots_[i].second;
    }
  }

  size_t size() const { return size_; }

  // Room for n entries without growing.
  void reserve(size_t n) {
    size_t want = 16;
    while (want * 3 < n * 4) want *= 2;
    if (want > used_.size()) Grow(want);
  }

  // Empties the map and keeps its memory.
  void clear() {
    if (size_ == 0) return;
    std::fill(used_.begin(), used_.end(), uint8_t(0));
    size_ = 0;
  }

 private:
  void Grow(size_t capacity) {
    std::vector<std::pair<K, V>> old_slots(capacity);
    std::vector<uint8_t> old_used(capacity, 0);
    old_slots.swap(slots_);
    old_used.swap(used_);
    mask_ = capacity - 1;
    size_ = 0;
    for (size_t i = 0; i < old_used.size(); ++i)
      if (old_used[i]) Insert(old_slots[i].first, old_slots[i].second);
  }

  std::vector<std::pair<K, V>> slots_;
  std::vector<uint8_t> used_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace cautograd
