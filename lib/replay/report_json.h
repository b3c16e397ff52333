// The replay report as JSON: what `replay --json` prints, and how an
// isolated replay sends its report back to the parent process; and a
// divergence in words, as replay and reduce print it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lib/replay/replay.h"

namespace cautograd {

nlohmann::json ReportToJson(const ReplayReport& report);
// False if `j` is not a report ReportToJson wrote.
bool ReportFromJson(const nlohmann::json& j, ReplayReport* report);

// "call 0, op 12 (aten::mm) in node 3 (MmBackward0): output tensor 40: max
// abs error ..., max rel error ... (rtol ..., atol ...)".
std::string DivergenceText(const CallReplay& call);

}  // namespace cautograd
