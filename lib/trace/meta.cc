#include "lib/trace/meta.h"

#include <ctime>

#include <unistd.h>

namespace cautograd {

namespace {

std::string NowIso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// The stage an evaluate_function frame is in, which decides the phase of
// the ops it runs: tensor pre-hooks run before the node, output validation,

}  // namespace

Meta NewMeta(ValuesMode values, const std::string& libtorch_version) {
  Meta meta;
  meta.tool_version = kToolVersion;
  meta.libtorch_version = libtorch_version;
  meta.time = NowIso8601();
  meta.host = HostName();
  meta.values = values;
  return meta;
}

}  // namespace cautograd
