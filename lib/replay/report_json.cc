#include "lib/replay/report_json.h"

#include <cstdio>

namespace cautograd {

using nlohmann::json;

json ReportToJson(const ReplayReport& report) {
  json calls = json::array();
  for (const CallReplay& c : report.calls) {
    json j = {{"index", c.index},
              {"ops", c.ops},
              {"inputs", c.inputs},
              {"inputs_from_values", c.inputs_from_values},
              {"inputs_synthesized", c.inputs_synthesized},
              {"inputs_aliased", c.inputs_aliased},
              {"peak_bytes", c.peak_bytes},
              {"run_us", c.run_us},
              {"compared", c.compared},
              {"worst_abs", c.worst_abs},
              {"worst_rel", c.worst_rel},
              {"diverged", c.diverged}};
    if (c.diverged) {
      const Divergence& d = c.divergence;
      j["divergence"] = {{"op", d.op},
                         {"op_name", d.op_name},
                         {"node", d.node},
                         {"node_type", d.node_type},
                         {"tensor", d.tensor},
                         {"what", d.what},
                         {"max_abs", d.max_abs},
                         {"max_rel", d.max_rel},
                         {"rtol", d.tolerance.rtol},
                         {"atol", d.tolerance.atol},
                         {"detail", d.detail}};
    }
    calls.push_back(std::move(j));
  }
  return {{"checked", report.checked}, {"calls", std::move(calls)}};
}

bool ReportFromJson(const json& j, ReplayReport* report) {
  try {
    *report = ReplayReport();
    report->checked = j.at("checked").get<bool>();
    for (const json& c : j.at("calls")) {
      CallReplay r;
      r.index = c.at("index").get<int64_t>();
      r.ops = c.at("ops").get<int64_t>();
      r.inputs = c.at("inputs").get<int64_t>();
      r.inputs_from_values = c.at("inputs_from_values").get<int64_t>();
      r.inputs_synthesized = c.at("inputs_synthesized").get<int64_t>();
      r.inputs_aliased = c.at("inputs_aliased").get<int64_t>();
      r.peak_bytes = c.at("peak_bytes").get<int64_t>();
      r.run_us = c.at("run_us").get<double>();
      r.compared = c.at("compared").get<int64_t>();
      r.worst_abs = c.at("worst_abs").get<double>();
      r.worst_rel = c.at("worst_rel").get<double>();
      r.diverged = c.at("diverged").get<bool>();
      if (r.diverged) {
        const json& d = c.at("divergence");
        Divergence& v = r.divergence;
        v.op = d.at("op").get<int64_t>();
        v.op_name = d.at("op_name").get<std::string>();
        v.node = d.at("node").get<int64_t>();
        v.node_type = d.at("node_type").get<std::string>();
        v.tensor = d.at("tensor").get<int64_t>();
        v.what = d.at("what").get<std::string>();
        v.max_abs = d.at("max_abs").get<double>();
        v.max_rel = d.at("max_rel").get<double>();
        v.tolerance.rtol = d.at("rtol").get<double>();
        v.tolerance.atol = d.at("atol").get<double>();
        v.detail = d.at("detail").get<std::string>();
      }
      report->calls.push_back(std::move(r));
    }
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::string DivergenceText(const CallReplay& c) {
  const Divergence& d = c.divergence;
  std::string out = "call " + std::to_string(c.index);
  if (d.op >= 0) {
    out += ", op " + std::to_string(d.op) + " (" + d.op_name + ")";
    if (d.node >= 0)
      out += " in node " + std::to_string(d.node) + " (" + d.node_type + ")";
    else
      out += " in the engine";
  } else if (d.node >= 0) {
    out += ", node " + std::to_string(d.node) + " (" + d.node_type + ")";
  }
  out += ": " + d.what;
  if (!d.detail.empty()) return out + ": " + d.detail;
  return out + ": max abs error " + Number(d.max_abs) + ", max rel error " + Number(d.max_rel) + " (rtol " +
         Number(d.tolerance.rtol) + ", atol " + Number(d.tolerance.atol) + ")";
}

}  // namespace cautograd
