// The replay report as JSON: what `replay --json` prints, and how an
// isolated replay sends its report back to the parent process.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lib/replay/replay.h"

namespace cautograd {

nlohmann::json ReportToJson(const ReplayReport& report);
// False if `j` is not a report ReportToJson wrote.
bool ReportFromJson(const nlohmann::json& j, ReplayReport* report);

}  // namespace cautograd
