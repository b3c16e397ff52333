#include "lib/trace/trace_io.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lib/trace/ca_key_io.h"
#include "lib/trace/encoding.h"
#include "lib/trace/trace_json.h"

namespace cautograd {

using nlohmann::json;

namespace {

// Bounds past which a trace is refused as absurd rather than trusted.
constexpr int64_t kMaxRank = 64;
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int64_t kMaxNumel = int64_t(1) << 48;
constexpr int64_t kMaxStorageBytes = int64_t(1) << 50;
// zstd expands a frame at most about 32,000-fold (a run-length block of 128
// KiB in 4 bytes); a declared size past twice that is a lie.
constexpr uint64_t kMaxZstdRatio = 65536;

// A JSON path built only when an error needs it: a chain of segments on the
// stack, each naming a key or an index below its parent.
struct Path {
  const Path* parent = nullptr;
  const char* key = nullptr;
  int64_t index = -1;

  // A Path points at its parent, so a Path kept in a variable must have a
  // parent that outlives it: use KeyAt rather than Key(..).At(..) there.
  Path Key(const char* k) const { return Path{this, k, -1}; }
  Path At(int64_t i) const { return Path{this, nullptr, i}; }
  Path KeyAt(const char* k, int64_t i) const { return Path{this, k, i}; }

  std::string Render() const {
    std::vector<const Path*> chain;
    for (const Path* p = this; p; p = p->parent) chain.push_back(p);
    std::string out;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const Path* p = *it;
      if (p->key) {
        if (!out.empty()) out += '.';
        out += p->key;
      }
      if (p->index >= 0) out += '[' + std::to_string(p->index) + ']';
    }
    return out.empty() ? "(top level)" : out;
  }
};

const char* JsonTypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "something else";
  }
}

// A call's arrays of records, in the order the reader checks them: each may
// refer only to those before it (a tensor to its storage, an op to its node
// and tensors, a value to its op).
enum Section {
  kStorages,
  kTensors,
  kNodes,
  kOps,
  kValues,  // fields of the call
  kGuardNodes,
  kGuardTensors,
  kGuardScalars,
  kGuardSizes,  // fields of its guards
  kSections
};
constexpr const char* kSectionKeys[kSections] = {"storages", "tensors", "nodes",   "ops",  "values",
                                                 "nodes",    "tensors", "scalars", "sizes"};
bool IsGuardSection(int s) { return s >= kGuardNodes; }

// Which sections of a call were read record by record as the text was
// parsed (StreamingReader), and hold only an empty array in the document.
using Streamed = std::array<bool, kSections>;

class TraceParser {
 public:
  TraceParser(const std::string& source, ArchiveIndex* archive, std::string* err)
      : source_(source), archive_(archive), err_(err) {}
  friend class StreamingReader;

  // `calls_read`: the calls were read and checked while parsing; only the
  // rest of the document is left to check.
  bool Parse(const json& root, Trace* trace, bool calls_read = false) {
    Path top;
    if (!root.is_object()) return Fail(top, std::string("expected an object, found ") + JsonTypeName(root));
    std::string format;
    if (!String(root, "format", top, &format)) return false;
    if (format != kTraceFormatName)
      return Fail(top.Key("format"), "not a cautograd trace (format '" + format + "')");
    int64_t version = 0;
    if (!Int(root, "version", top, &version)) return false;
    // Version 1 is bare JSON; version 2 is JSON inside an archive.
    const int64_t expected = archive_ ? 2 : 1;
    if (version != expected) {
      std::string why;
      if (version > kTraceVersion)
        why = "trace version " + std::to_string(version) + " but this cautograd reads versions 1 and " +
              std::to_string(kTraceVersion) + "; upgrade cautograd to read it";
      else if (version == 2 || version == 1)
        why = "version " + std::to_string(version) + (archive_ ? " JSON inside a version 2 archive"
                                                               : " traces are archives, and this is bare JSON") +
              "; the file was not written by cautograd";
      else
        why = "trace version " + std::to_string(version) + " is not one cautograd ever wrote";
      return Fail(top.Key("version"), why);
    }
    trace->version = int(version);
    if (!ParseMeta(root, top, &trace->meta)) return false;
    if (!ParseSkipped(root, top, &trace->skipped)) return false;
    const json* calls = nullptr;
    if (!Array(root, "calls", top, &calls)) return false;
    if (calls_read) return true;
    Path calls_path = top.Key("calls");
    trace->calls.resize(calls->size());
    for (size_t i = 0; i < calls->size(); ++i) {
      Path p = calls_path.At(int64_t(i));
      if (!ParseCall((*calls)[i], p, &trace->calls[i]) || !CheckCallIndex(trace->calls[i], p, int64_t(i)))
        return false;
    }
    return true;
  }

  bool CheckCallIndex(const Call& call, const Path& p, int64_t position) {
    if (call.index == position) return true;
    return Fail(p.Key("index"),
                "call index " + std::to_string(call.index) + " at position " + std::to_string(position));
  }

  bool Fail(const Path& at, const std::string& what) {
    *err_ = source_ + ": " + at.Render() + ": " + what;
    return false;
  }

  // The fields of a call before its sections.
  bool ParseCallHeader(const json& c, const Path& p, Call* call) {
    if (!Object(c, p)) return false;
    if (!NonNegative(c, "index", p, &call->index)) return false;
    if (!String(c, "api", p, &call->api)) return false;
    if (call->api != "backward" && call->api != "grad")
      return Fail(p.Key("api"), "unknown api '" + call->api + "' (backward or grad)");
    if (!Bool(c, "create_graph", p, &call->create_graph)) return false;
    if (!Bool(c, "keep_graph", p, &call->keep_graph)) return false;
    if (!Double(c, "duration_us", p, &call->duration_us)) return false;
    return Double(c, "start_unix_s", p, &call->start_unix_s);
  }

  // Roots name nodes: checked once every node is read.
  bool ParseRoots(const json& c, const Path& p, Call* call) {
    if (!IntList(c, "roots", p, &call->roots)) return false;
    for (size_t i = 0; i < call->roots.size(); ++i)
      if (!NodeRef(call->roots[i], *call, p.Key("roots").At(int64_t(i)), false)) return false;
    return true;
  }

  // One record of a section, appended to the call: `at` is its path,
  // `position` its index in the section.
  bool ParseRecord(int section, const json& e, const Path& at, int64_t position, Call* call) {
    switch (section) {
      case kStorages:
        return Append(&call->storages, [&](StorageInfo* x) { return ParseStorage(e, at, position, x); });
      case kTensors:
        return Append(&call->tensors, [&](TensorInfo* x) { return ParseTensor(e, at, position, *call, x); });
      case kNodes:
        return Append(&call->nodes, [&](Node* x) { return ParseNode(e, at, position, *call, x); });
      case kOps:
        return Append(&call->ops, [&](Op* x) { return ParseOp(e, at, position, *call, x); });
      case kValues:
        return Append(&call->values, [&](Value* x) { return ParseValue(e, at, *call, x); });
      case kGuardNodes:
        return Append(&call->guards.nodes, [&](GuardNode* x) { return ParseGuardNode(e, at, *call, x); });
      case kGuardTensors:
        return Append(&call->guards.tensors,
                      [&](GuardTensor* x) { return ParseGuardTensor(e, at, *call, x); });
      case kGuardScalars:
        return Append(&call->guards.scalars,
                      [&](GuardScalar* x) { return ParseGuardScalar(e, at, *call, x); });
      case kGuardSizes:
        return Append(&call->guards.sizes, [&](GuardSize* x) { return ParseGuardSize(e, at, *call, x); });
    }
    return false;
  }

  // The array of a section under `parent` (the call, or its guards): present
  // always, its records parsed unless they were streamed.
  bool ParseSection(int section, const json& parent, const Path& p, bool streamed, Call* call) {
    const json* arr = nullptr;
    if (!Array(parent, kSectionKeys[section], p, &arr)) return false;
    if (streamed) return true;
    for (size_t i = 0; i < arr->size(); ++i)
      if (!ParseRecord(section, (*arr)[i], p.KeyAt(kSectionKeys[section], int64_t(i)), int64_t(i), call))
        return false;
    return true;
  }

  bool ParseCall(const json& c, const Path& p, Call* call, const Streamed& streamed = Streamed{}) {
    if (!ParseCallHeader(c, p, call)) return false;
    for (int s : {kStorages, kTensors, kNodes})
      if (!ParseSection(s, c, p, streamed[size_t(s)], call)) return false;
    if (!CheckEdges(*call, p)) return false;
    if (!ParseRoots(c, p, call)) return false;
    for (int s : {kOps, kValues})
      if (!ParseSection(s, c, p, streamed[size_t(s)], call)) return false;
    const json* g = Field(c, "guards", p, true);
    if (!g) return false;
    const Path gp = p.Key("guards");
    if (!Object(*g, gp)) return false;
    for (int s = kGuardNodes; s < kSections; ++s)
      if (!ParseSection(s, *g, gp, streamed[size_t(s)], call)) return false;
    auto ca = c.find("compiled_autograd");
    if (ca == c.end()) return true;
    std::string where, what;
    if (ParseCompiledAutogradKey(*ca, *call, &call->compiled_autograd, &where, &what)) return true;
    const Path cp = p.Key("compiled_autograd");
    *err_ = source_ + ": " + cp.Render() + (where.empty() ? "" : "." + where) + ": " + what;
    return false;
  }

 private:
  template <typename T, typename F>
  static bool Append(std::vector<T>* records, F parse) {
    T record;
    if (!parse(&record)) return false;
    records->push_back(std::move(record));
    return true;
  }

  // --- typed field access -------------------------------------------------

  const json* Field(const json& obj, const char* key, const Path& at, bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) Fail(at, std::string("missing field '") + key + "'");
      return nullptr;
    }
    return &*it;
  }

  bool WrongType(const json& j, const Path& at, const char* want) {
    return Fail(at, std::string("expected ") + want + ", found " + JsonTypeName(j));
  }

  bool AsInt(const json& j, const Path& at, int64_t* out) {
    if (j.is_number_integer()) {
      *out = j.get<int64_t>();
      return true;
    }
    if (j.is_number_unsigned()) {
      uint64_t u = j.get<uint64_t>();
      if (u > uint64_t(INT64_MAX)) return Fail(at, "integer out of range");
      *out = int64_t(u);
      return true;
    }
    return WrongType(j, at, "an integer");
  }

  bool AsDouble(const json& j, const Path& at, double* out) {
    if (j.is_number()) {
      *out = j.get<double>();
      return true;
    }
    if (j.is_string()) {
      const std::string& s = j.get_ref<const std::string&>();
      if (s == "nan")
        *out = std::nan("");
      else if (s == "inf")
        *out = INFINITY;
      else if (s == "-inf")
        *out = -INFINITY;
      else
        return Fail(at, "expected a number or \"nan\"/\"inf\"/\"-inf\", found '" + s + "'");
      return true;
    }
    return WrongType(j, at, "a number");
  }

  bool Int(const json& obj, const char* key, const Path& at, int64_t* out, bool required = true) {
    const json* f = Field(obj, key, at, required);
    if (!f) return !required;
    return AsInt(*f, at.Key(key), out);
  }

  bool NonNegative(const json& obj, const char* key, const Path& at, int64_t* out, bool required = true) {
    if (!Int(obj, key, at, out, required)) return false;
    if (*out < 0) return Fail(at.Key(key), "expected a non-negative integer, found " + std::to_string(*out));
    return true;
  }

  bool Double(const json& obj, const char* key, const Path& at, double* out, bool required = true) {
    const json* f = Field(obj, key, at, required);
    if (!f) return !required;
    return AsDouble(*f, at.Key(key), out);
  }

  bool Bool(const json& obj, const char* key, const Path& at, bool* out, bool required = true) {
    const json* f = Field(obj, key, at, required);
    if (!f) return !required;
    if (!f->is_boolean()) return WrongType(*f, at.Key(key), "true or false");
    *out = f->get<bool>();
    return true;
  }

  bool String(const json& obj, const char* key, const Path& at, std::string* out, bool required = true) {
    const json* f = Field(obj, key, at, required);
    if (!f) return !required;
    if (!f->is_string()) return WrongType(*f, at.Key(key), "a string");
    *out = f->get<std::string>();
    return true;
  }

  bool Array(const json& obj, const char* key, const Path& at, const json** out, bool required = true) {
    const json* f = Field(obj, key, at, required);
    *out = f;
    if (!f) return !required;
    if (!f->is_array()) return WrongType(*f, at.Key(key), "an array");
    return true;
  }

  bool Object(const json& j, const Path& at) { return j.is_object() || WrongType(j, at, "an object"); }

  bool IntList(const json& obj, const char* key, const Path& at, std::vector<int64_t>* out,
               bool required = true) {
    const json* arr = nullptr;
    if (!Array(obj, key, at, &arr, required)) return false;
    if (!arr) return true;
    return IntArray(*arr, at.Key(key), out);
  }

  bool IntArray(const json& arr, const Path& at, std::vector<int64_t>* out) {
    out->resize(arr.size());
    for (size_t i = 0; i < arr.size(); ++i)
      if (!AsInt(arr[i], at.At(int64_t(i)), &(*out)[i])) return false;
    return true;
  }

  bool Dtype(const json& obj, const char* key, const Path& at, std::string* out) {
    if (!String(obj, key, at, out)) return false;
    if (DtypeSize(*out) == 0)
      return Fail(at.Key(key), "unknown dtype '" + *out + "' (see docs/trace-format.md for the names)");
    return true;
  }

  bool Shape(const json& obj, const char* key, const Path& at, std::vector<int64_t>* shape) {
    if (!IntList(obj, key, at, shape)) return false;
    Path p = at.Key(key);
    if (int64_t(shape->size()) > kMaxRank)
      return Fail(p, "rank " + std::to_string(shape->size()) + " exceeds " + std::to_string(kMaxRank));
    int64_t numel = 1;
    for (size_t d = 0; d < shape->size(); ++d) {
      int64_t v = (*shape)[d];
      if (v < 0 || v > kMaxDim) return Fail(p.At(int64_t(d)), "absurd size " + std::to_string(v));
      if (v != 0 && numel > kMaxNumel / v) return Fail(p, "absurd number of elements");
      numel *= v;
    }
    return true;
  }

  // --- sections -------------------------------------------------------------

  bool ParseMeta(const json& root, const Path& top, Meta* meta) {
    const json* m = Field(root, "meta", top, true);
    if (!m) return false;
    Path p = top.Key("meta");
    if (!Object(*m, p)) return false;
    if (!String(*m, "tool_version", p, &meta->tool_version)) return false;
    if (!String(*m, "libtorch_version", p, &meta->libtorch_version)) return false;
    if (!String(*m, "time", p, &meta->time)) return false;
    if (!String(*m, "host", p, &meta->host)) return false;
    const json* cmd = nullptr;
    if (!Array(*m, "command", p, &cmd)) return false;
    for (size_t i = 0; i < cmd->size(); ++i) {
      if (!(*cmd)[i].is_string()) return WrongType((*cmd)[i], p.Key("command").At(int64_t(i)), "a string");
      meta->command.push_back((*cmd)[i].get<std::string>());
    }
    if (const json* seed = Field(*m, "seed", p, false); seed && !seed->is_null()) {
      if (!seed->is_number_unsigned() && !(seed->is_number_integer() && seed->get<int64_t>() >= 0))
        return WrongType(*seed, p.Key("seed"), "a non-negative integer");
      meta->seed = seed->get<uint64_t>();
    }
    std::string values;
    if (!String(*m, "values", p, &values)) return false;
    if (!ParseValuesMode(values, &meta->values))
      return Fail(p.Key("values"), "unknown values mode '" + values + "' (none, ints, inputs or all)");
    return true;
  }

  // Optional: a trace in which every chosen call was recorded has none.
  bool ParseSkipped(const json& root, const Path& top, std::vector<SkippedCall>* skipped) {
    const json* list = nullptr;
    if (!Array(root, "skipped", top, &list, false)) return false;
    if (!list) return true;
    const Path p = top.Key("skipped");
    skipped->resize(list->size());
    for (size_t i = 0; i < list->size(); ++i) {
      const Path at = p.At(int64_t(i));
      const json& e = (*list)[i];
      SkippedCall& s = (*skipped)[i];
      if (!Object(e, at) || !NonNegative(e, "program_call", at, &s.program_call) ||
          !NonNegative(e, "process", at, &s.process) || !String(e, "reason", at, &s.reason) ||
          !Double(e, "start_unix_s", at, &s.start_unix_s))
        return false;
    }
    return true;
  }

  bool ParseStorage(const json& s, const Path& p, int64_t position, StorageInfo* st) {
    if (!Object(s, p)) return false;
    if (!Int(s, "id", p, &st->id)) return false;
    if (st->id != position)
      return Fail(p.Key("id"), "storage id " + std::to_string(st->id) + " at position " +
                                   std::to_string(position) + "; ids must count up from 0");
    if (!NonNegative(s, "nbytes", p, &st->nbytes)) return false;
    if (st->nbytes > kMaxStorageBytes)
      return Fail(p.Key("nbytes"), "absurd storage size " + std::to_string(st->nbytes));
    return String(s, "device", p, &st->device);
  }

  bool ParseTensor(const json& t, const Path& p, int64_t position, const Call& call, TensorInfo* info) {
    if (!Object(t, p)) return false;
    if (!Int(t, "id", p, &info->id)) return false;
    if (info->id != position)
      return Fail(p.Key("id"), "tensor id " + std::to_string(info->id) + " at position " +
                                   std::to_string(position) + "; ids must count up from 0");
    if (!Shape(t, "shape", p, &info->shape)) return false;
    if (!IntList(t, "strides", p, &info->strides)) return false;
    if (info->strides.size() != info->shape.size())
      return Fail(p.Key("strides"), std::to_string(info->strides.size()) + " strides for " +
                                        std::to_string(info->shape.size()) + " dimensions");
    if (!NonNegative(t, "offset", p, &info->offset)) return false;
    if (!Dtype(t, "dtype", p, &info->dtype)) return false;
    if (!String(t, "device", p, &info->device)) return false;
    if (!Bool(t, "requires_grad", p, &info->requires_grad)) return false;
    if (!Int(t, "storage", p, &info->storage)) return false;
    if (info->storage < -1 || info->storage >= int64_t(call.storages.size()))
      return Fail(p.Key("storage"),
                  "storage " + std::to_string(info->storage) + " is not in this call's storages");
    if (info->storage >= 0 && !FitsStorage(*info, call.storages[size_t(info->storage)]))
      return Fail(p, "tensor reaches past the end of storage " + std::to_string(info->storage));
    const json* roles = nullptr;
    if (!Array(t, "roles", p, &roles)) return false;
    for (size_t i = 0; i < roles->size(); ++i) {
      const json& r = (*roles)[i];
      uint32_t role = 0;
      if (!r.is_string()) return WrongType(r, p.Key("roles").At(int64_t(i)), "a string");
      if (!ParseRole(r.get<std::string>(), &role))
        return Fail(p.Key("roles").At(int64_t(i)), "unknown role '" + r.get<std::string>() + "'");
      info->roles |= role;
    }
    if (!String(t, "name", p, &info->name, false)) return false;
    if (!String(t, "layout", p, &info->layout, false)) return false;
    if (!info->layout.empty() && !IsKnownLayout(info->layout))
      return Fail(p.Key("layout"), "unknown layout '" + info->layout + "'");
    if (!info->layout.empty() && info->storage >= 0)
      return Fail(p.Key("storage"), "a " + info->layout + " tensor has no storage of its own");
    if (!Int(t, "sparse_dim", p, &info->sparse_dim, false)) return false;
    if (info->sparse_dim != -1 && (info->layout != "sparse_coo" || info->sparse_dim < 0 ||
                                   info->sparse_dim > int64_t(info->shape.size())))
      return Fail(p.Key("sparse_dim"), "sparse_dim " + std::to_string(info->sparse_dim) + " for a " +
                                           (info->layout.empty() ? "strided" : info->layout) + " tensor of " +
                                           std::to_string(info->shape.size()) + " dimensions");
    return true;
  }

  // Every product and sum is checked: a stride of 2^48 over 65537
  // elements must not wrap around into a small number.
  static bool FitsStorage(const TensorInfo& t, const StorageInfo& s) {
    if (t.numel() == 0) return true;
    int64_t last = t.offset;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      int64_t reach = 0;
      if (t.strides[d] < 0) return false;
      if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &reach) || __builtin_add_overflow(last, reach, &last))
        return false;
    }
    int64_t end = 0;
    if (__builtin_add_overflow(last, int64_t(1), &end) ||
        __builtin_mul_overflow(end, int64_t(DtypeSize(t.dtype)), &end))
      return false;
    return end <= s.nbytes;
  }

  bool TensorRef(int64_t id, const Call& call, const Path& at, bool allow_undefined) {
    if (id == -1 && allow_undefined) return true;
    if (id < 0 || id >= int64_t(call.tensors.size()))
      return Fail(at, "tensor " + std::to_string(id) + " is not in this call's tensors");
    return true;
  }

  bool NodeRef(int64_t id, const Call& call, const Path& at, bool allow_none) {
    if (id == -1 && allow_none) return true;
    if (id < 0 || id >= int64_t(call.nodes.size()))
      return Fail(at, "node " + std::to_string(id) + " is not in this call's nodes");
    return true;
  }

  bool ParseNode(const json& n, const Path& p, int64_t position, const Call& call, Node* node) {
    if (!Object(n, p)) return false;
    if (!Int(n, "id", p, &node->id)) return false;
    if (node->id != position)
      return Fail(p.Key("id"), "node id " + std::to_string(node->id) + " at position " +
                                   std::to_string(position) + "; ids must count up from 0");
    if (!String(n, "type", p, &node->type)) return false;
    const json* seq = Field(n, "seq", p, true);
    if (!seq) return false;
    if (seq->is_string() && seq->get<std::string>() == "max") {
      node->seq_is_max = true;
      node->seq = UINT64_MAX;
    } else {
      int64_t v = 0;
      if (!AsInt(*seq, p.Key("seq"), &v)) return false;
      if (v < 0) return Fail(p.Key("seq"), "negative sequence number");
      node->seq = uint64_t(v);
    }
    int64_t topo = 0;
    if (!NonNegative(n, "topo", p, &topo)) return false;
    node->topo = uint64_t(topo);

    const json* arr = nullptr;
    if (!Array(n, "inputs", p, &arr)) return false;
    node->inputs.resize(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
      Path ip = p.KeyAt("inputs", int64_t(i));
      const json& in = (*arr)[i];
      if (!Object(in, ip)) return false;
      if (!Shape(in, "shape", ip, &node->inputs[i].shape)) return false;
      if (!Dtype(in, "dtype", ip, &node->inputs[i].dtype)) return false;
      if (!String(in, "device", ip, &node->inputs[i].device)) return false;
    }
    if (!Array(n, "next", p, &arr)) return false;
    node->next.resize(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
      Path ep = p.KeyAt("next", int64_t(i));
      const json& e = (*arr)[i];
      if (e.is_null()) continue;  // an edge with no function
      if (!Object(e, ep)) return false;
      if (!NonNegative(e, "node", ep, &node->next[i].node)) return false;
      if (!NonNegative(e, "input", ep, &node->next[i].input)) return false;
    }
    if (!Array(n, "hooks", p, &arr)) return false;
    node->hooks.resize(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
      Path hp = p.KeyAt("hooks", int64_t(i));
      const json& h = (*arr)[i];
      if (!Object(h, hp)) return false;
      std::string kind;
      if (!String(h, "kind", hp, &kind)) return false;
      if (!ParseHookKind(kind, &node->hooks[i].kind))
        return Fail(hp.Key("kind"), "unknown hook kind '" + kind + "'");
      if (!String(h, "lang", hp, &node->hooks[i].lang)) return false;
      if (node->hooks[i].lang != "cpp" && node->hooks[i].lang != "python")
        return Fail(hp.Key("lang"), "unknown hook language '" + node->hooks[i].lang + "' (cpp or python)");
      if (!String(h, "type", hp, &node->hooks[i].type)) return false;
    }
    if (!Bool(n, "executed", p, &node->executed)) return false;
    if (!Int(n, "exec_order", p, &node->exec_order)) return false;
    if (node->executed != (node->exec_order >= 0))
      return Fail(p.Key("exec_order"), "exec_order must be >= 0 exactly when the node executed");
    if (!IntList(n, "grads_in", p, &node->grads_in)) return false;
    for (size_t i = 0; i < node->grads_in.size(); ++i)
      if (!TensorRef(node->grads_in[i], call, p.Key("grads_in").At(int64_t(i)), true)) return false;
    if (!Double(n, "start_us", p, &node->start_us)) return false;
    if (!Double(n, "duration_us", p, &node->duration_us)) return false;

    if (const json* leaf = Field(n, "leaf", p, false)) {
      Path lp = p.Key("leaf");
      if (!Object(*leaf, lp)) return false;
      LeafInfo info;
      if (!Int(*leaf, "tensor", lp, &info.tensor)) return false;
      if (!TensorRef(info.tensor, call, lp.Key("tensor"), true)) return false;
      if (!Shape(*leaf, "shape", lp, &info.shape)) return false;
      if (!Dtype(*leaf, "dtype", lp, &info.dtype)) return false;
      if (!Bool(*leaf, "requires_grad", lp, &info.requires_grad)) return false;
      if (!Bool(*leaf, "grad_defined_before", lp, &info.grad_defined_before)) return false;
      if (!Int(*leaf, "grad_before", lp, &info.grad_before)) return false;
      if (!TensorRef(info.grad_before, call, lp.Key("grad_before"), true)) return false;
      if (!Int(*leaf, "grad_after", lp, &info.grad_after)) return false;
      if (!TensorRef(info.grad_after, call, lp.Key("grad_after"), true)) return false;
      if (!String(*leaf, "name", lp, &info.name, false)) return false;
      node->leaf = std::move(info);
    }
    return true;
  }

  // Edges point at real nodes and inputs, and the graph has no cycle: the
  // autograd graph is a DAG, and later passes walk it recursively.
  bool CheckEdges(const Call& call, const Path& p) {
    for (const Node& node : call.nodes) {
      for (size_t i = 0; i < node.next.size(); ++i) {
        const Edge& e = node.next[i];
        if (e.node == -1) continue;
        Path np = p.KeyAt("nodes", node.id);
        Path ep = np.KeyAt("next", int64_t(i));
        if (!NodeRef(e.node, call, ep.Key("node"), false)) return false;
        size_t inputs = call.nodes[size_t(e.node)].inputs.size();
        if (size_t(e.input) >= inputs)
          return Fail(ep.Key("input"), "input " + std::to_string(e.input) + " of node " +
                                           std::to_string(e.node) + ", which has " + std::to_string(inputs) +
                                           " inputs");
      }
    }
    enum Color : char { kWhite, kGrey, kBlack };
    std::vector<Color> color(call.nodes.size(), kWhite);
    std::vector<std::pair<int64_t, size_t>> stack;  // node, next edge to visit
    for (size_t start = 0; start < call.nodes.size(); ++start) {
      if (color[start] != kWhite) continue;
      stack.push_back({int64_t(start), 0});
      color[start] = kGrey;
      while (!stack.empty()) {
        auto& [id, edge] = stack.back();
        const Node& node = call.nodes[size_t(id)];
        if (edge == node.next.size()) {
          color[size_t(id)] = kBlack;
          stack.pop_back();
          continue;
        }
        int64_t to = node.next[edge++].node;
        if (to < 0) continue;
        if (color[size_t(to)] == kGrey)
          return Fail(p.Key("nodes").At(id),
                      "edge to node " + std::to_string(to) + " closes a cycle; a backward graph has none");
        if (color[size_t(to)] == kWhite) {
          color[size_t(to)] = kGrey;
          stack.push_back({to, 0});
        }
      }
    }
    return true;
  }

  bool ParseOp(const json& o, const Path& p, int64_t position, const Call& call, Op* op) {
    if (!Object(o, p)) return false;
    op->index = position;
    if (!String(o, "op", p, &op->name)) return false;
    if (op->name.find("::") == std::string::npos)
      return Fail(p.Key("op"), "operator '" + op->name + "' has no namespace (expected 'aten::mm')");
    if (!String(o, "overload", p, &op->overload)) return false;
    if (!Int(o, "node", p, &op->node)) return false;
    if (!NodeRef(op->node, call, p.Key("node"), true)) return false;
    std::string phase;
    if (!String(o, "phase", p, &phase)) return false;
    if (!ParsePhase(phase, &op->phase)) return Fail(p.Key("phase"), "unknown phase '" + phase + "'");
    int64_t thread = 0;
    if (!NonNegative(o, "thread", p, &thread)) return false;
    op->thread = int(thread);
    if (!Double(o, "start_us", p, &op->start_us)) return false;
    if (!Double(o, "duration_us", p, &op->duration_us)) return false;
    const json* arr = nullptr;
    if (!Array(o, "args", p, &arr)) return false;
    op->args.resize(arr->size());
    op->arg_names.resize(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
      Path ap = p.KeyAt("args", int64_t(i));
      if (!ParseArg((*arr)[i], ap, call, &op->args[i], 0)) return false;
      if (!String((*arr)[i], "name", ap, &op->arg_names[i])) return false;
    }
    if (!Array(o, "outputs", p, &arr)) return false;
    op->outputs.resize(arr->size());
    for (size_t i = 0; i < arr->size(); ++i)
      if (!ParseArg((*arr)[i], p.Key("outputs").At(int64_t(i)), call, &op->outputs[i], 0)) return false;
    return true;
  }

  bool ParseArg(const json& a, const Path& p, const Call& call, Arg* arg, int depth) {
    if (depth > 8) return Fail(p, "lists nested deeper than 8 levels");
    if (!Object(a, p)) return false;
    if (!Bool(a, "size", p, &arg->is_size, false)) return false;
    using K = Arg::Kind;
    if (a.contains("tensor")) {
      arg->kind = K::kTensor;
      const json& t = a["tensor"];
      if (t.is_null()) {
        arg->tensor = -1;
        return true;
      }
      if (!AsInt(t, p.Key("tensor"), &arg->tensor)) return false;
      return TensorRef(arg->tensor, call, p.Key("tensor"), false);
    }
    if (a.contains("tensors")) {
      arg->kind = K::kTensorList;
      const json& t = a["tensors"];
      Path tp = p.Key("tensors");
      if (!t.is_array()) return WrongType(t, tp, "an array");
      arg->ints.resize(t.size());
      for (size_t i = 0; i < t.size(); ++i) {
        if (t[i].is_null()) {
          arg->ints[i] = -1;
          continue;
        }
        if (!AsInt(t[i], tp.At(int64_t(i)), &arg->ints[i])) return false;
        if (!TensorRef(arg->ints[i], call, tp.At(int64_t(i)), false)) return false;
      }
      return true;
    }
    if (a.contains("int")) {
      arg->kind = K::kInt;
      return AsInt(a["int"], p.Key("int"), &arg->i);
    }
    if (a.contains("float")) {
      arg->kind = K::kFloat;
      return AsDouble(a["float"], p.Key("float"), &arg->f);
    }
    if (a.contains("bool")) {
      arg->kind = K::kBool;
      return Bool(a, "bool", p, &arg->b);
    }
    if (a.contains("ints")) {
      arg->kind = K::kIntList;
      return IntList(a, "ints", p, &arg->ints);
    }
    if (a.contains("floats")) {
      arg->kind = K::kFloatList;
      const json& f = a["floats"];
      if (!f.is_array()) return WrongType(f, p.Key("floats"), "an array");
      arg->floats.resize(f.size());
      for (size_t i = 0; i < f.size(); ++i)
        if (!AsDouble(f[i], p.Key("floats").At(int64_t(i)), &arg->floats[i])) return false;
      return true;
    }
    if (a.contains("bools")) {
      arg->kind = K::kBoolList;
      const json& b = a["bools"];
      if (!b.is_array()) return WrongType(b, p.Key("bools"), "an array");
      for (size_t i = 0; i < b.size(); ++i) {
        if (!b[i].is_boolean()) return WrongType(b[i], p.Key("bools").At(int64_t(i)), "true or false");
        arg->bools.push_back(b[i].get<bool>());
      }
      return true;
    }
    if (a.contains("list")) {
      arg->kind = K::kList;
      const json& l = a["list"];
      if (!l.is_array()) return WrongType(l, p.Key("list"), "an array");
      arg->items.resize(l.size());
      for (size_t i = 0; i < l.size(); ++i)
        if (!ParseArg(l[i], p.Key("list").At(int64_t(i)), call, &arg->items[i], depth + 1)) return false;
      return true;
    }
    struct TextKind {
      const char* key;
      K kind;
    };
    static const TextKind kTextKinds[] = {
        {"str", K::kString},
        {"dtype", K::kDtype},
        {"device", K::kDevice},
        {"layout", K::kLayout},
        {"memory_format", K::kMemoryFormat},
        {"opaque", K::kOpaque},
    };
    for (const TextKind& tk : kTextKinds) {
      if (!a.contains(tk.key)) continue;
      arg->kind = tk.kind;
      if (!String(a, tk.key, p, &arg->text)) return false;
      if (tk.kind == K::kDtype && DtypeSize(arg->text) == 0)
        return Fail(p.Key("dtype"), "unknown dtype '" + arg->text + "'");
      return true;
    }
    if (a.contains("none")) {
      arg->kind = K::kNone;
      return true;
    }
    return Fail(p,
                "argument has no value (expected one of tensor, tensors, int, float, bool, "
                "str, ints, floats, bools, list, dtype, device, layout, memory_format, opaque, none)");
  }

  bool ParseValue(const json& v, const Path& p, const Call& call, Value* value) {
    if (!Object(v, p)) return false;
    if (!Int(v, "tensor", p, &value->tensor)) return false;
    if (!TensorRef(value->tensor, call, p.Key("tensor"), false)) return false;
    std::string when;
    if (!String(v, "when", p, &when)) return false;
    if (when == "first_use") {
      value->when = Value::When::kFirstUse;
    } else if (when == "end") {
      value->when = Value::When::kEnd;
    } else if (when == "after_op") {
      value->when = Value::When::kAfterOp;
      if (!NonNegative(v, "op", p, &value->op)) return false;
      if (value->op >= int64_t(call.ops.size()))
        return Fail(p.Key("op"), "op " + std::to_string(value->op) + " is not in this call's ops");
    } else {
      return Fail(p.Key("when"), "unknown moment '" + when + "' (first_use, after_op or end)");
    }
    const TensorInfo& t = call.tensors[size_t(value->tensor)];
    if (!Dtype(v, "dtype", p, &value->dtype)) return false;
    if (value->dtype != t.dtype)
      return Fail(p.Key("dtype"),
                  "dtype " + value->dtype + " but tensor " + std::to_string(t.id) + " is " + t.dtype);
    if (!NonNegative(v, "numel", p, &value->numel)) return false;
    if (value->numel != t.numel())
      return Fail(p.Key("numel"), std::to_string(value->numel) + " elements but tensor " +
                                      std::to_string(t.id) + " has " + std::to_string(t.numel()));
    return archive_ ? ParseStoredValue(v, p, value) : ParseInlineValue(v, p, value);
  }

  // Version 1: the bytes in the JSON, base64.
  bool ParseInlineValue(const json& v, const Path& p, Value* value) {
    std::string encoding, crc, data;
    if (!String(v, "encoding", p, &encoding)) return false;
    if (encoding != "base64") return Fail(p.Key("encoding"), "unknown encoding '" + encoding + "' (base64)");
    if (!String(v, "crc32", p, &crc)) return false;
    if (!String(v, "data", p, &data)) return false;
    if (!Base64Decode(data, &value->data)) return Fail(p.Key("data"), "invalid base64");
    int64_t want = value->numel * DtypeSize(value->dtype);
    if (int64_t(value->data.size()) != want)
      return Fail(p.Key("data"),
                  std::to_string(value->data.size()) + " bytes, expected " + std::to_string(want));
    std::string actual = Crc32Hex(value->data);
    if (actual != crc)
      return Fail(p.Key("crc32"),
                  "checksum " + crc + " does not match the data (" + actual + "); the file is corrupt");
    return true;
  }

  // Version 2: an archive entry holds the bytes, raw or as one zstd frame.
  // Its sizes are checked now; its bytes and checksum when it is read.
  bool ParseStoredValue(const json& v, const Path& p, Value* value) {
    std::string entry, crc, compression;
    if (!String(v, "entry", p, &entry)) return false;
    if (!String(v, "crc32", p, &crc)) return false;
    if (!ParseHex32(crc, &value->crc)) return Fail(p.Key("crc32"), "expected 8 lowercase hex digits");
    if (v.contains("compression")) {
      if (!String(v, "compression", p, &compression)) return false;
      if (compression != "zstd")
        return Fail(p.Key("compression"), "unknown compression '" + compression + "' (zstd, or none: absent)");
      value->zstd = true;
    }
    auto it = archive_->by_name.find(entry);
    if (it == archive_->by_name.end()) return Fail(p.Key("entry"), "no entry '" + entry + "' in the archive");
    if (archive_->used[it->second])
      return Fail(p.Key("entry"), "entry '" + entry + "' is named by another value too");
    archive_->used[it->second] = true;
    const ArchiveEntry& e = (*archive_->entries)[it->second];
    // numel and dtype are bounded and checked, so this cannot overflow.
    const uint64_t want = uint64_t(value->numel) * uint64_t(DtypeSize(value->dtype));
    if (!value->zstd && e.size != want)
      return Fail(p.Key("entry"), "entry '" + entry + "' holds " + std::to_string(e.size) + " bytes, expected " +
                                      std::to_string(want) + " (" + std::to_string(value->numel) + " x " +
                                      value->dtype + ")");
    if (value->zstd && want > kMaxZstdRatio * (e.size + 1))
      return Fail(p.Key("entry"), "entry '" + entry + "' declares " + std::to_string(want) + " bytes from " +
                                      std::to_string(e.size) + " compressed, more than zstd can expand");
    if (value->zstd && e.size > want + want / 64 + 1024)
      return Fail(p.Key("entry"), "entry '" + entry + "' holds " + std::to_string(e.size) +
                                      " compressed bytes for " + std::to_string(want) + ", more than zstd writes");
    value->stored = e;
    value->has_data = false;
    return true;
  }

  bool ParseGuardNode(const json& n, const Path& np, const Call& call, GuardNode* gn) {
    if (!Object(n, np)) return false;
    if (!Int(n, "node", np, &gn->node) || !NodeRef(gn->node, call, np.Key("node"), false)) return false;
    if (!String(n, "type", np, &gn->type)) return false;
    const json* kinds = nullptr;
    if (!Array(n, "hooks", np, &kinds)) return false;
    for (size_t k = 0; k < kinds->size(); ++k) {
      if (!(*kinds)[k].is_string()) return WrongType((*kinds)[k], np.Key("hooks").At(int64_t(k)), "a string");
      gn->hook_kinds.push_back((*kinds)[k].get<std::string>());
    }
    gn->num_hooks = int(gn->hook_kinds.size());
    return true;
  }

  bool ParseGuardTensor(const json& t, const Path& tp, const Call& call, GuardTensor* gt) {
    if (!Object(t, tp)) return false;
    if (!Int(t, "node", tp, &gt->node) || !NodeRef(gt->node, call, tp.Key("node"), false)) return false;
    if (!Int(t, "tensor", tp, &gt->tensor) || !TensorRef(gt->tensor, call, tp.Key("tensor"), true))
      return false;
    if (!String(t, "role", tp, &gt->role)) return false;
    if (!Bool(t, "defined", tp, &gt->defined)) return false;
    if (!String(t, "dtype", tp, &gt->dtype)) return false;
    if (!String(t, "device", tp, &gt->device)) return false;
    return Bool(t, "requires_grad", tp, &gt->requires_grad);
  }

  bool ParseGuardScalar(const json& s, const Path& sp, const Call& call, GuardScalar* gs) {
    if (!Object(s, sp)) return false;
    if (!Int(s, "node", sp, &gs->node) || !NodeRef(gs->node, call, sp.Key("node"), true)) return false;
    if (!Int(s, "op", sp, &gs->op)) return false;
    if (gs->op < 0 || gs->op >= int64_t(call.ops.size()))
      return Fail(sp.Key("op"), "op " + std::to_string(gs->op) + " is not in this call's ops");
    if (!String(s, "arg", sp, &gs->arg)) return false;
    return String(s, "value", sp, &gs->value);
  }

  bool ParseGuardSize(const json& s, const Path& sp, const Call& call, GuardSize* gs) {
    if (!Object(s, sp)) return false;
    if (!Int(s, "node", sp, &gs->node) || !NodeRef(gs->node, call, sp.Key("node"), true)) return false;
    if (!Int(s, "tensor", sp, &gs->tensor) || !TensorRef(gs->tensor, call, sp.Key("tensor"), true))
      return false;
    if (!Int(s, "op", sp, &gs->op)) return false;
    if (gs->op < -1 || gs->op >= int64_t(call.ops.size()))
      return Fail(sp.Key("op"), "op " + std::to_string(gs->op) + " is not in this call's ops");
    if (!String(s, "role", sp, &gs->role)) return false;
    if (!String(s, "what", sp, &gs->what)) return false;
    if (!NonNegative(s, "dim", sp, &gs->dim)) return false;
    return Int(s, "value", sp, &gs->value);
  }

  std::string source_;
  ArchiveIndex* archive_;  // version 2: the archive's value entries; null for version 1
  std::string* err_;
};

// Reads a trace while nlohmann's parser goes through its text: each record of
// a call's sections (storages, tensors, nodes, ops, values, the guards'
// lists) is checked and converted as soon as it is complete, then dropped
// from the document, so a large trace never exists twice in memory, as a
// document and as a Trace. The checks and their order are TraceParser's on
// a whole document, so a bad file gives the same message either way. Where
// a file's fields come in another order than the writer's (readers may not
// depend on the layout), whatever cannot be checked yet stays in the
// document and is checked when its call ends.
class StreamingReader {
 public:
  static constexpr size_t kMaxNesting = 128;

  StreamingReader(TraceParser* parser, Trace* trace) : parser_(parser), trace_(trace) {}

  // nlohmann's parser callback: false drops the value just read.
  bool Event(json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    switch (event) {
      case E::key:
        key_ = parsed.get<std::string>();
        return true;
      case E::object_start:
      case E::array_start:
        // Deeper than any trace nests: refused before it is built (a
        // discarded container gets no end event, so it is not opened).
        if (stack_.size() >= kMaxNesting) {
          if (!failed_) {
            Path top;
            failed_ = !parser_->Fail(top, "nested deeper than " + std::to_string(kMaxNesting) +
                                              " levels; no cautograd trace does");
          }
          return false;
        }
        Open(event == E::array_start);
        return true;
      case E::object_end:
      case E::array_end: {
        Frame closed = std::move(stack_.back());
        stack_.pop_back();
        const bool keep = Close(closed, parsed);
        return Completed(std::move(closed.key), parsed) && keep;
      }
      case E::value:
        return Completed(stack_.empty() || stack_.back().array ? std::string() : key_, parsed);
    }
    return true;
  }

  // The calls were read here; the document holds none of them.
  bool calls_read() const { return streaming_; }
  bool failed() const { return failed_; }

 private:
  // An open object or array: the key it has in its parent ("" in an array),
  // and for a section, which one.
  struct Frame {
    bool array = false;
    std::string key;
    int64_t next = 0;    // arrays: index of the next element
    int section = -1;    // a section read record by record
    bool named = false;  // its key names a section, streamed or not
  };

  struct CallState {
    json head = json::object();  // the call's fields other than its sections, as read
    bool header_checked = false, roots_checked = false;
    bool kept = false;  // a section is kept in the document: stream nothing more of this call
    Streamed streamed{}, done{};
  };

  enum Where { kElsewhere, kRoot, kCallsArray, kCallObject, kGuardsObject };

  // What the innermost of the first `depth` open frames is.
  Where At(size_t depth) const {
    switch (depth) {
      case 1:
        return stack_[0].array ? kElsewhere : kRoot;
      case 2:
        return At(1) == kRoot && stack_[1].array && stack_[1].key == "calls" ? kCallsArray : kElsewhere;
      case 3:
        return At(2) == kCallsArray && !stack_[2].array ? kCallObject : kElsewhere;
      case 4:
        return At(3) == kCallObject && !stack_[3].array && stack_[3].key == "guards" ? kGuardsObject
                                                                                     : kElsewhere;
      default:
        return kElsewhere;
    }
  }
  Where Top() const { return At(stack_.size()); }

  int64_t call_position() const { return int64_t(trace_->calls.size()) - 1; }
  Path CallPath(const Path& top) const { return top.KeyAt("calls", call_position()); }

  void Open(bool array) {
    Frame f;
    f.array = array;
    const Where parent = stack_.empty() ? kElsewhere : Top();
    if (!stack_.empty() && !stack_.back().array) f.key = key_;
    if (parent == kRoot && array && f.key == "calls") CallsOpen();
    if (parent == kCallsArray && !array && streaming_) {
      trace_->calls.emplace_back();
      calls_.emplace_back();
    }
    if (streaming_ && (parent == kCallObject || parent == kGuardsObject)) {
      int section = -1;
      for (int s = 0; s < kSections; ++s)
        if (IsGuardSection(s) == (parent == kGuardsObject) && f.key == kSectionKeys[s]) section = s;
      f.named = section >= 0;
      if (array && section >= 0 && SectionOpen(section)) f.section = section;
    }
    stack_.push_back(std::move(f));
  }

  // A container closed: false drops it.
  bool Close(const Frame& f, const json& parsed) {
    const Where parent = Top();
    if (parent == kRoot && f.key != "calls") root_head_[f.key] = parsed;
    // The call's small fields (roots), not a section kept whole.
    if (parent == kCallObject && streaming_ && !f.named && f.key != "guards")
      calls_.back().head[f.key] = parsed;
    if (f.section >= 0 && !failed_) {
      CallState& c = calls_.back();
      c.done[size_t(f.section)] = true;
      Path top;
      if (f.section == kNodes && !parser_->CheckEdges(trace_->calls.back(), CallPath(top))) failed_ = true;
    }
    if (parent == kCallsArray && streaming_ && !f.array) return CallClose(parsed);
    return true;
  }

  // A value or container completed inside its parent: a record of a
  // streamed section is read and dropped; a scalar field of the root or a
  // call is noted.
  bool Completed(const std::string& key, const json& parsed) {
    if (stack_.empty()) return true;
    Frame& parent = stack_.back();
    const int64_t position = parent.next++;
    const Where where = Top();
    if (parsed.is_primitive() && where == kRoot) root_head_[key] = parsed;
    if (parsed.is_primitive() && where == kCallObject && streaming_) calls_.back().head[key] = parsed;
    if (where == kCallsArray && streaming_ && !parsed.is_object() && !failed_) {
      // Not a call: the message the whole-document check gives.
      Path top;
      Call unused;
      failed_ = !parser_->ParseCall(parsed, top.KeyAt("calls", position), &unused);
      return true;
    }
    if (parent.section < 0 || failed_) return true;
    Path top;
    const Path call = CallPath(top);
    const Path guards = call.Key("guards");
    const Path at =
        (IsGuardSection(parent.section) ? guards : call).KeyAt(kSectionKeys[parent.section], position);
    if (!parser_->ParseRecord(parent.section, parsed, at, position, &trace_->calls.back())) {
      failed_ = true;
      return true;
    }
    return false;
  }

  // The calls array starts: stream them if the fields before them (format,
  // version, meta) came first and are good.
  void CallsOpen() {
    if (calls_seen_) {
      Path top;
      failed_ = !parser_->Fail(top.Key("calls"), "duplicate field 'calls'");
      return;
    }
    calls_seen_ = true;
    if (failed_ || !root_head_.contains("format") || !root_head_.contains("version") ||
        !root_head_.contains("meta"))
      return;
    Trace scratch;
    json head = root_head_;
    head["calls"] = json::array();
    if (!parser_->Parse(head, &scratch, true)) {
      failed_ = true;
      return;
    }
    streaming_ = true;
  }

  // Whether a section's records can be read as they come: everything the
  // whole-document check does before them is done.
  bool SectionOpen(int section) {
    if (!streaming_ || failed_) return false;
    CallState& c = calls_.back();
    Call& call = trace_->calls.back();
    Path top;
    const Path p = CallPath(top);
    if (c.streamed[size_t(section)]) {
      const Path guards = p.Key("guards");
      failed_ = !parser_->Fail((IsGuardSection(section) ? guards : p).Key(kSectionKeys[section]),
                               std::string("duplicate field '") + kSectionKeys[section] + "'");
      return false;
    }
    if (c.kept) return false;
    for (int before = 0; before < section; ++before)
      if (!c.done[size_t(before)]) return Keep(&c);
    if (!c.header_checked) {
      for (const char* field : {"index", "api", "create_graph", "keep_graph", "duration_us", "start_unix_s"})
        if (!c.head.contains(field)) return Keep(&c);
      if (!parser_->ParseCallHeader(c.head, p, &call)) return Failed();
      c.header_checked = true;
    }
    if (section >= kOps && !c.roots_checked) {
      if (!c.head.contains("roots")) return Keep(&c);
      if (!parser_->ParseRoots(c.head, p, &call)) return Failed();
      c.roots_checked = true;
    }
    c.streamed[size_t(section)] = true;
    return true;
  }

  bool Failed() {
    failed_ = true;
    return false;
  }

  static bool Keep(CallState* c) {
    c->kept = true;
    return false;
  }

  // A call ends: what was not streamed is checked now, from the document,
  // and the call's document dropped.
  bool CallClose(const json& parsed) {
    if (failed_) return true;
    Path top;
    const Path p = CallPath(top);
    Call& call = trace_->calls.back();
    const CallState& c = calls_.back();
    if (!parser_->ParseCall(parsed, p, &call, c.streamed) ||
        !parser_->CheckCallIndex(call, p, call_position())) {
      failed_ = true;
      return true;
    }
    return false;
  }

  TraceParser* parser_;
  Trace* trace_;
  std::vector<Frame> stack_;
  std::string key_;
  json root_head_ = json::object();  // the root's fields other than calls, as read
  std::vector<CallState> calls_;
  bool calls_seen_ = false, streaming_ = false, failed_ = false;
};

// nlohmann's text without its "[json.exception.parse_error.101] " prefix.
std::string JsonErrorText(const json::exception& e) {
  std::string what = e.what();
  size_t pos = what.find("] ");
  return pos == std::string::npos ? what : what.substr(pos + 2);
}

}  // namespace

bool ParseTrace(const std::string& text, const std::string& source, Trace* trace, std::string* err) {
  return ParseTraceJson(text, source, nullptr, trace, err);
}

bool ParseTraceJson(const std::string& text, const std::string& source, ArchiveIndex* archive, Trace* trace,
                    std::string* err) {
  *trace = Trace();
  TraceParser parser(source, archive, err);
  StreamingReader reader(&parser, trace);
  json root;
  try {
    root = json::parse(text, [&reader](int, json::parse_event_t event, json& parsed) {
      return reader.Event(event, parsed);
    });
  } catch (const json::parse_error& e) {
    std::string what = JsonErrorText(e);
    if (e.byte >= text.size()) what = "truncated or empty file: " + what;
    *err = source + ": not valid JSON: " + what;
    return false;
  } catch (const json::exception& e) {
    // A number too large for a double ("1e999"), and whatever else the
    // parser refuses that is not a syntax error.
    *err = source + ": not a readable trace: " + JsonErrorText(e);
    return false;
  }
  if (reader.failed()) return false;
  return parser.Parse(root, trace, reader.calls_read());
}

}  // namespace cautograd
