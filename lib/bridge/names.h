// The trace's names for libtorch enums (dtype "float32", layout "strided",
// memory format "contiguous"), both ways. The one place that maps them.
#pragma once

#include <string>

#include <c10/core/Layout.h>
#include <c10/core/MemoryFormat.h>
#include <c10/core/ScalarType.h>

namespace cautograd {

// "" for a dtype the trace format cannot name (quantized types, ...).
const char* DtypeName(c10::ScalarType type);
bool DtypeFromName(const std::string& name, c10::ScalarType* type);

const char* LayoutName(c10::Layout layout);
bool LayoutFromName(const std::string& name, c10::Layout* layout);

const char* MemoryFormatName(c10::MemoryFormat format);
bool MemoryFormatFromName(const std::string& name, c10::MemoryFormat* format);

}  // namespace cautograd
