// Byte encodings the trace format uses for tensor values.
#pragma once

#include <cstdint>
#include <string>

namespace cautograd {

std::string Base64Encode(const std::string& bytes);
// False on a character outside the alphabet or a bad length.
bool Base64Decode(const std::string& text, std::string* bytes);

// CRC-32 (IEEE 802.3, the zlib polynomial), as 8 lowercase hex digits.
uint32_t Crc32(const std::string& bytes);
std::string Crc32Hex(const std::string& bytes);

}  // namespace cautograd
