// Which backward calls to record: "all", "3", "2-5", "every:10", or a comma
// list of those ("0,4-6,every:100"). Calls count from 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cautograd {

class CallFilter {
 public:
  CallFilter() = default;  // all calls
  // False and *err on bad text, naming the bad part.
  static bool Parse(const std::string& text, CallFilter* filter, std::string* err);

  bool Selects(int64_t call) const;
  // Recording stops after this many recorded calls; -1: no limit.
  int64_t max_calls = -1;

 private:
  struct Range {
    int64_t first = 0, last = -1;  // last == -1: open-ended
    int64_t every = 1;
  };
  std::vector<Range> ranges_;  // empty: all
};

}  // namespace cautograd
