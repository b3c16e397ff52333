#include "lib/trace/op_semantics.h"

#include <set>

namespace cautograd {

bool OutputsUninitialized(const std::string& op_name) {
  static const std::set<std::string> kUninitialized = {
      "aten::empty",     "aten::empty_like",        "aten::empty_strided",
      "aten::new_empty", "aten::new_empty_strided", "aten::resize_",
  };
  return kUninitialized.count(op_name) > 0;
}

}  // namespace cautograd
