#include "lib/bridge/names.h"

namespace cautograd {

namespace {

template <typename E>
struct Named {
  E value;
  const char* name;
};

constexpr Named<c10::ScalarType> kDtypes[] = {
    {c10::ScalarType::Float, "float32"},
    {c10::ScalarType::Double, "float64"},
    {c10::ScalarType::Half, "float16"},
    {c10::ScalarType::BFloat16, "bfloat16"},
    {c10::ScalarType::ComplexFloat, "complex64"},
    {c10::ScalarType::ComplexDouble, "complex128"},
    {c10::ScalarType::Long, "int64"},
    {c10::ScalarType::Int, "int32"},
    {c10::ScalarType::Short, "int16"},
    {c10::ScalarType::Char, "int8"},
    {c10::ScalarType::Byte, "uint8"},
    {c10::ScalarType::Bool, "bool"},
};

constexpr Named<c10::Layout> kLayouts[] = {
    {c10::Layout::Strided, "strided"},     {c10::Layout::Sparse, "sparse_coo"},
    {c10::Layout::SparseCsr, "sparse_csr"}, {c10::Layout::SparseCsc, "sparse_csc"},
    {c10::Layout::SparseBsr, "sparse_bsr"}, {c10::Layout::SparseBsc, "sparse_bsc"},
    {c10::Layout::Mkldnn, "mkldnn"},
};

constexpr Named<c10::MemoryFormat> kMemoryFormats[] = {
    {c10::MemoryFormat::Contiguous, "contiguous"},
    {c10::MemoryFormat::Preserve, "preserve"},
    {c10::MemoryFormat::ChannelsLast, "channels_last"},
    {c10::MemoryFormat::ChannelsLast3d, "channels_last_3d"},
};

template <typename E, size_t N>
const char* NameOf(const Named<E> (&table)[N], E value) {
  for (const Named<E>& entry : table)
    if (entry.value == value) return entry.name;
  return "";
}

template <typename E, size_t N>
bool ValueOf(const Named<E> (&table)[N], const std::string& name, E* value) {
  for (const Named<E>& entry : table) {
    if (name == entry.name) {
      *value = entry.value;
      return true;
    }
  }
  return false;
}

}  // namespace

const char* DtypeName(c10::ScalarType type) { return NameOf(kDtypes, type); }
bool DtypeFromName(const std::string& name, c10::ScalarType* type) { return ValueOf(kDtypes, name, type); }
const char* LayoutName(c10::Layout layout) { return NameOf(kLayouts, layout); }
bool LayoutFromName(const std::string& name, c10::Layout* layout) { return ValueOf(kLayouts, name, layout); }
const char* MemoryFormatName(c10::MemoryFormat format) { return NameOf(kMemoryFormats, format); }
bool MemoryFormatFromName(const std::string& name, c10::MemoryFormat* format) {
  return ValueOf(kMemoryFormats, name, format);
}

}  // namespace cautograd
