// `cautograd report`: one self-contained HTML file for one trace, or two
// (then with their diff). The engine gathers everything the page shows as
// one JSON document (ReportData), lays the graphs out with dot, and the
// renderer pours that into the page's template (lib/report/assets/):
// styles, script and data inline, nothing fetched when it opens.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/diff/diff.h"
#include "lib/report/layout.h"
#include "lib/trace/trace.h"

namespace cautograd {

struct ReportTrace {
  std::string name;  // as the user named the file
  const Trace* trace = nullptr;
};

struct ReportOptions {
  std::optional<DotProgram> dot;  // absent: no graphs are drawn,
  std::string no_dot_reason;      // and the page says this
  int parallel = 2;               // dot processes at once
  // A call whose graph has more nodes than this opens with its repeated
  // structure collapsed.
  int64_t open_collapsed_above = 300;
  DiffOptions diff;  // with two traces
  // ("laying out graphs", done, total), as work proceeds.
  std::function<void(const std::string&, size_t, size_t)> progress;
};

// Everything the page shows, as the JSON its script reads
// (docs/report.md, "The data"). False and *err when the diff cannot be made.
bool BuildReportData(const std::vector<ReportTrace>& traces, const ReportOptions& options, nlohmann::json* data,
                     std::string* err);

// The page: template, styles and script with `data` inline, escaped so that
// no string from a trace can end the script element or be read as markup.
std::string RenderReportHtml(const nlohmann::json& data);

// JSON text safe inside <script type="application/json">: '<', '>', '&',
// U+2028 and U+2029 written as \u escapes, invalid UTF-8 replaced.
std::string ScriptSafeJson(const nlohmann::json& value);

}  // namespace cautograd
