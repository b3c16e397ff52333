// Reading a call's "compiled_autograd" block (docs/trace-format.md): the
// key compiled autograd computed, which nothing in cautograd can recompute
// offline, so every field is checked against the call it sits in.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "lib/trace/trace.h"

namespace cautograd {

// False on a bad block: *where is the path inside it ("nodes[3].key_hash"),
// *what says what is wrong.
bool ParseCompiledAutogradKey(const nlohmann::json& block, const Call& call, CompiledAutogradKey* key,
                              std::string* where, std::string* what);

}  // namespace cautograd
