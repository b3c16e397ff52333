// The cache simulation as JSON: what `recompile --json` prints and what the
// HTML report reads, one schema (docs/recompile.md).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/recompile/cache_sim.h"

namespace cautograd {

// `files`: the traces the calls came from, as the user named them.
nlohmann::json SimulationJson(const CacheSimulation& sim, const std::vector<std::string>& files);
nlohmann::json SizeJson(const SizeInput& size);
nlohmann::json ReasonJson(const MissReason& reason);

// The calls compiled autograd's cache saw: where some ran under compiled
// autograd, those alone (the eager ones never went near it). *left_out
// counts the rest.
std::vector<CacheCall> CallsTheCacheSaw(std::vector<CacheCall> calls, size_t* left_out);

}  // namespace cautograd
