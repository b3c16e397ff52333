#include "lib/trace/human.h"

#include <cstdio>

namespace cautograd {

std::string HumanBytes(int64_t n) {
  char buf[32];
  const double kib = 1024.0, mib = kib * 1024, gib = mib * 1024;
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(n));
  else if (double(n) < mib)
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(n) / kib);
  else if (double(n) < gib)
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(n) / mib);
  else if (double(n) < gib * 1024)
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(n) / gib);
  else if (double(n) < gib * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f TiB", double(n) / (gib * 1024));
  else if (double(n) < gib * 1024 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f PiB", double(n) / (gib * 1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.1f EiB", double(n) / (gib * 1024 * 1024 * 1024));
  return buf;
}

std::string HumanMicros(double us) {
  char buf[32];
  if (us < 1000)
    std::snprintf(buf, sizeof buf, "%.0f us", us);
  else
    std::snprintf(buf, sizeof buf, "%.2f ms", us / 1000);
  return buf;
}

}  // namespace cautograd
