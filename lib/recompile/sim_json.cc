#include "lib/recompile/sim_json.h"

#include <algorithm>

#include "lib/recompile/reason_text.h"

namespace cautograd {

using json = nlohmann::json;

json SimulationJson(const CacheSimulation& sim, const std::vector<std::string>& files) {
  json out;
  out["files"] = files;
  out["dynamic"] = DynamicModeName(sim.mode);
  out["keys"] = sim.keys;
  out["calls"] = json::array();
  for (const CacheCallResult& c : sim.calls) {
    json jc = {{"file", c.source}, {"call", c.call},   {"result", c.hit ? "hit" : "miss"},
               {"entry", c.entry}, {"nodes", c.nodes}, {"sizes", c.sizes}};
    jc["reasons"] = json::array();
    for (const MissReason& r : c.reasons) jc["reasons"].push_back(ReasonJson(r));
    jc["log"] = c.log;
    out["calls"].push_back(jc);
  }
  out["entries"] = json::array();
  for (const CacheEntry& e : sim.entries) {
    json je = {{"id", e.id}, {"compiles", e.compiles}, {"sizes", e.sizes.size()}};
    je["calls"] = json::array();
    for (int64_t k : e.calls)
      je["calls"].push_back({{"file", sim.calls[size_t(k)].source}, {"call", sim.calls[size_t(k)].call}});
    je["dynamic_sizes"] = json::array();
    for (const EntrySize& s : e.sizes) {
      if (!s.dynamic) continue;
      json js = SizeJson(s.input);
      js["seen"] = s.seen;
      const CacheCallResult& since = sim.calls[size_t(s.dynamic_since)];
      js["dynamic_since"] = {{"file", since.source}, {"call", since.call}};
      je["dynamic_sizes"].push_back(js);
    }
    out["entries"].push_back(je);
  }
  int64_t dynamic = 0;
  for (const CacheEntry& e : sim.entries) dynamic += e.dynamic_sizes();
  out["summary"] = {{"calls", sim.calls.size()},      {"compiles", sim.compiles()},
                    {"recompiles", sim.recompiles()}, {"hits", sim.hits()},
                    {"hit_rate", sim.hit_rate()},     {"entries", sim.entries.size()},
                    {"dynamic_sizes", dynamic}};
  return out;
}

json SizeJson(const SizeInput& s) {
  json js = {{"index", s.index},         {"node_call", s.node_call},
             {"node_type", s.node_type}, {"index_in_node", s.index_in_node},
             {"dim", s.where.dim},       {"text", SizeInputText(s)}};
  if (s.where.op >= 0) {
    js["op"] = s.where.op;
    js["op_name"] = s.op_name;
    js["arg"] = s.where.what;
  } else {
    js["tensor"] = s.where.tensor;
    js["role"] = s.where.role;
    js["what"] = s.where.what;
  }
  if (!s.leaf.empty()) js["leaf"] = s.leaf;
  return js;
}

json ReasonJson(const MissReason& r) {
  json j = {{"kind", ReasonKindName(r.kind)}, {"text", ReasonText(r)}};
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  auto put_id = [&](const char* key, int64_t v) {
    if (v >= 0) j[key] = v;
  };
  put_id("node", r.node);
  put("node_type", r.node_type);
  put_id("node_call", r.node_call);
  put_id("tensor", r.tensor);
  put("role", r.role);
  put("field", r.field);
  put("leaf", r.leaf);
  put_id("op", r.op);
  put("op_name", r.op_name);
  put("arg", r.arg);
  put_id("dim", r.dim);
  put_id("size_index", r.size_index);
  put_id("size_index_in_node", r.size_index_in_node);
  if (r.kind != MissReason::Kind::kCacheEmpty) {
    j["old"] = r.old_value;
    j["new"] = r.new_value;
  }
  if (r.kind == MissReason::Kind::kSize) j["now_dynamic"] = r.now_dynamic;
  if (r.kind == MissReason::Kind::kKey) {
    j["key_size"] = r.key_size;
    j["previous_key_sizes"] = r.previous_key_sizes;
  }
  if (r.explains) j["explains"] = true;
  put("log", r.log);
  put("hint", ReasonHint(r));
  return j;
}

std::vector<CacheCall> CallsTheCacheSaw(std::vector<CacheCall> calls, size_t* left_out) {
  auto eager = [](const CacheCall& c) { return c.call->compiled_autograd.ran != CompiledAutogradKey::Ran::kCompiled; };
  const size_t compiled = size_t(std::count_if(calls.begin(), calls.end(), [&](const CacheCall& c) { return !eager(c); }));
  *left_out = 0;
  if (compiled == 0 || compiled == calls.size()) return calls;
  *left_out = calls.size() - compiled;
  calls.erase(std::remove_if(calls.begin(), calls.end(), eager), calls.end());
  return calls;
}

}  // namespace cautograd
