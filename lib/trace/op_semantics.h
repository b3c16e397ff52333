// Facts about aten operators that the recorder and replay must agree on.
#pragma once

#include <string>

namespace cautograd {

// Ops whose outputs are uninitialized memory (empty, new_empty_strided, ...):
// their values mean nothing, so they are neither recorded nor compared.
bool OutputsUninitialized(const std::string& op_name);

}  // namespace cautograd
