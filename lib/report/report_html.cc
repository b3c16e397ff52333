// The report page: the template in lib/report/assets/, compiled in
// (cmake/embed_assets.cmake), with the data poured in as a JSON island.
#include <string>

#include "lib/report/report.h"

namespace cautograd {

// lib/report/assets/*, as text (report_assets.cc, generated).
extern const char kReportHtml[];
extern const char kReportCss[];
extern const char kReportJs[];

std::string ScriptSafeJson(const nlohmann::json& value) {
  const std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 64);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // Inside a JSON string these can only be string content: as \u escapes
    // JSON.parse reads them back unchanged, and the HTML parser never sees
    // "</script", "<!--" or an entity.
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
               (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderReportHtml(const nlohmann::json& data) {
  std::string page = kReportHtml;
  auto put = [&](const std::string& marker, const std::string& text) {
    const size_t at = page.find(marker);
    if (at != std::string::npos) page.replace(at, marker.size(), text);
  };
  // The data last, so that no marker is ever searched for inside it.
  put("/*@CSS@*/", kReportCss);
  put("/*@JS@*/", kReportJs);
  put("@DATA@", ScriptSafeJson(data));
  return page;
}

}  // namespace cautograd
