// Numbers as people read them in messages and reports: one spelling
// everywhere ("12.3 KiB", "1.50 ms").
#pragma once

#include <cstdint>
#include <string>

namespace cautograd {

// "512 B", "12.3 KiB", "4.0 MiB", "1.2 GiB".
std::string HumanBytes(int64_t bytes);
// "850 us", "12.34 ms".
std::string HumanMicros(double us);

}  // namespace cautograd
