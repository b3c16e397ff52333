#include "lib/trace/call_filter.h"

#include <cctype>

namespace cautograd {

namespace {

bool ParseCount(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 15) return false;
  int64_t v = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool CallFilter::Parse(const std::string& text, CallFilter* filter, std::string* err) {
  *filter = CallFilter();
  if (text == "all" || text.empty()) return true;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    Range r;
    size_t dash = part.find('-');
    bool ok;
    if (part.rfind("every:", 0) == 0) {
      ok = ParseCount(part.substr(6), &r.every) && r.every > 0;
    } else if (dash != std::string::npos) {
      ok = ParseCount(part.substr(0, dash), &r.first) && ParseCount(part.substr(dash + 1), &r.last) &&
           r.first <= r.last;
    } else {
      ok = ParseCount(part, &r.first);
      r.last = r.first;
    }
    if (!ok) {
      *err = "bad call selection '" + part + "' in '" + text +
             "' (expected N, A-B with A <= B, every:N, or a comma list of them)";
      return false;
    }
    filter->ranges_.push_back(r);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

bool CallFilter::Selects(int64_t call) const {
  if (ranges_.empty()) return true;
  for (const Range& r : ranges_) {
    if (call < r.first || (r.last >= 0 && call > r.last)) continue;
    if ((call - r.first) % r.every == 0) return true;
  }
  return false;
}

}  // namespace cautograd
