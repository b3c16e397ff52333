// What format version 2 buys on a large trace: builds one call holding about
// 1 GiB of values of the kinds a real --values all trace keeps (random
// float32 activations and gradients, bfloat16, int64 indices, bool masks,
// zeroed gradients), writes it as version 2, version 2 compressed and
// version 1, and prints the sizes against the raw bytes and the JSON, and
// how well each kind compresses. benchmarks/trace_format.sh times the real
// `cautograd` on the files; docs/performance.md has the figures.
//
//   trace_scale DIR [--mib N] [--no-v1]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "lib/trace/archive.h"
#include "lib/trace/guards.h"
#include "lib/trace/trace_io.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

struct Kind {
  const char* name;
  const char* dtype;
  int share;  // of every 100 values
};
// Mostly random floats, as in a real trace.
constexpr Kind kKinds[] = {
    {"random float32", "float32", 80}, {"random bfloat16", "bfloat16", 6}, {"int64 indices < 1000", "int64", 6},
    {"bool masks", "bool", 4},         {"zero float32", "float32", 4},
};
constexpr int64_t kValueBytes = int64_t(4) << 20;

uint64_t state = 88172645463325252ull;
uint64_t Next() {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

std::string Fill(const Kind& k, int64_t numel) {
  std::string out(size_t(numel) * size_t(DtypeSize(k.dtype)), '\0');
  if (!std::strcmp(k.name, "zero float32")) return out;
  for (int64_t i = 0; i < numel; ++i) {
    if (!std::strcmp(k.dtype, "float32")) {
      // Normal-ish activations: a sum of uniforms, as floats.
      float f = float(int64_t(Next() % 2000001) - 1000000) * 1e-6f;
      std::memcpy(&out[size_t(i) * 4], &f, 4);
    } else if (!std::strcmp(k.dtype, "bfloat16")) {
      float f = float(int64_t(Next() % 2000001) - 1000000) * 1e-6f;
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      uint16_t b = uint16_t(bits >> 16);
      std::memcpy(&out[size_t(i) * 2], &b, 2);
    } else if (!std::strcmp(k.dtype, "int64")) {
      int64_t v = int64_t(Next() % 1000);
      std::memcpy(&out[size_t(i) * 8], &v, 8);
    } else {
      out[size_t(i)] = char(Next() & 1);
    }
  }
  return out;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: trace_scale DIR [--mib N] [--no-v1]\n");
    return 2;
  }
  const std::string dir = argv[1];
  int64_t mib = 1024;
  bool v1 = true;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--mib") && i + 1 < argc) mib = std::atoll(argv[++i]);
    if (!std::strcmp(argv[i], "--no-v1")) v1 = false;
  }
  Trace trace = SmallTrace();
  Call& call = trace.calls[0];
  call.values.clear();
  const int64_t count = (mib << 20) / kValueBytes;
  int64_t raw = 0, raw_by_kind[5] = {}, values_by_kind[5] = {};
  for (int64_t n = 0; n < count; ++n) {
    size_t kind = 0;
    for (int64_t at = n % 100, acc = 0; kind < 5; ++kind) {
      acc += kKinds[kind].share;
      if (at < acc) break;
    }
    const Kind& k = kKinds[kind];
    const int64_t numel = kValueBytes / DtypeSize(k.dtype);
    StorageInfo st{int64_t(call.storages.size()), kValueBytes, "cpu"};
    call.storages.push_back(st);
    TensorInfo t;
    t.id = int64_t(call.tensors.size());
    t.shape = {numel};
    t.strides = {1};
    t.dtype = k.dtype;
    t.device = "cpu";
    t.storage = st.id;
    t.roles = kRoleSaved;
    call.tensors.push_back(t);
    Value v;
    v.tensor = t.id;
    v.dtype = k.dtype;
    v.numel = numel;
    v.data = Fill(k, numel);
    raw += int64_t(v.data.size());
    raw_by_kind[kind] += int64_t(v.data.size());
    ++values_by_kind[kind];
    call.values.push_back(std::move(v));
  }
  call.guards = ComputeGuards(call);
  std::printf("%lld values, %.1f MiB raw; on this machine:\n", (long long)count, double(raw) / (1 << 20));
  std::string err;
  struct Out {
    const char* file;
    int version;
    bool compress;
    double seconds;
  };
  std::vector<Out> outs = {{"big.cag", 2, false, 0}, {"big-zstd.cag", 2, true, 0}};
  if (v1) outs.push_back({"big.json", 1, false, 0});
  for (Out& o : outs) {
    WriteOptions options;
    options.version = o.version;
    options.compress = o.compress;
    auto t0 = std::chrono::steady_clock::now();
    if (!WriteTraceFile(dir + "/" + o.file, trace, &err, options)) {
      std::fprintf(stderr, "trace_scale: %s\n", err.c_str());
      return 1;
    }
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // The JSON's size, as the archive holds it: its last entry.
  FileSource file;
  std::vector<ArchiveEntry> entries;
  if (!file.Open(dir + "/big.cag", &err) || !ReadArchiveDirectory(file, 1 << 24, &entries, &err)) {
    std::fprintf(stderr, "trace_scale: %s\n", err.c_str());
    return 1;
  }
  const int64_t json = int64_t(entries.back().size);
  for (const Out& o : outs) {
    const int64_t size = FileSize(dir + "/" + o.file);
    std::printf("  %-13s version %d%s: %8.1f MiB, %.4fx raw values + JSON%s, written in %.2f s\n", o.file,
                o.version, o.compress ? " zstd" : "     ", double(size) / (1 << 20), double(size) / double(raw + json),
                o.version == 2 && !o.compress ? " (target <= 1.02)" : "", o.seconds);
  }
  // How each kind compresses, from the compressed file's own figures.
  Trace packed;
  ReadOptions metadata_only;
  metadata_only.values = false;
  if (!ReadTraceFile(dir + "/big-zstd.cag", &packed, &err, metadata_only)) {
    std::fprintf(stderr, "trace_scale: %s\n", err.c_str());
    return 1;
  }
  int64_t stored_by_kind[5] = {};
  const auto& values = packed.calls[0].values;
  for (size_t i = 0; i < values.size(); ++i) {
    size_t kind = 0;
    for (int64_t at = int64_t(i) % 100, acc = 0; kind < 5; ++kind) {
      acc += kKinds[kind].share;
      if (at < acc) break;
    }
    stored_by_kind[kind] += int64_t(values[i].stored->size);
  }
  std::printf("  --compress, by kind (zstd level 3; kept only where it saves an eighth):\n");
  for (size_t k = 0; k < 5; ++k) {
    if (!values_by_kind[k]) continue;
    std::printf("    %-22s %4lld values: stored in %5.1f%% of their bytes\n", kKinds[k].name,
                (long long)values_by_kind[k], 100.0 * double(stored_by_kind[k]) / double(raw_by_kind[k]));
  }
  std::printf("  JSON: %.1f KiB\n", double(json) / 1024);
  return 0;
}

}  // namespace
}  // namespace cautograd

int main(int argc, char** argv) { return cautograd::Main(argc, argv); }
