#include "lib/trace/ca_key_io.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

namespace cautograd {

namespace {

using nlohmann::json;

// Compiled autograd keeps a key's size in 16 bits.
constexpr int64_t kMaxKeySize = 65535;
// More NodeCalls or sizes than any graph a process could hold.
constexpr int64_t kMaxEntries = int64_t(1) << 32;

class BlockReader {
 public:
  BlockReader(const Call& call, std::string* where, std::string* what)
      : call_(call), where_(where), what_(what) {}

  bool Read(const json& block, CompiledAutogradKey* key) {
    if (!block.is_object()) return Fail("", "expected an object");
    std::string ran;
    if (!Str(block, "ran", "", &ran)) return false;
    if (!ParseCaRan(ran, &key->ran)) return Fail("ran", "expected \"eager\" or \"compiled\", found '" + ran + "'");
    auto error = block.find("error");
    if (error == block.end()) return Fail("", "missing field 'error'");
    if (!error->is_null() && !error->is_string()) return Fail("error", "expected a string or null");
    if (error->is_string()) key->error = error->get<std::string>();
    auto nodes = block.find("nodes");
    if (nodes == block.end()) return Fail("", "missing field 'nodes'");
    if (!nodes->is_array()) return Fail("nodes", "expected an array");
    if (int64_t(nodes->size()) > kMaxEntries) return Fail("nodes", "too many nodes");
    for (size_t i = 0; i < nodes->size(); ++i) {
      CaNode node;
      if (!ReadNode((*nodes)[i], "nodes[" + std::to_string(i) + "]", &node)) return false;
      key->nodes.push_back(std::move(node));
    }
    if (!Int(block, "error_at", "", &key->error_at)) return false;
    const int64_t n = int64_t(key->nodes.size());
    if (key->error.empty() ? key->error_at != -1 : (key->error_at < 0 || key->error_at > n))
      return Fail("error_at", key->error.empty() ? "expected -1 where there is no error"
                                                 : "expected a position from 0 to " + std::to_string(n));
    return true;
  }

 private:
  bool ReadNode(const json& j, const std::string& at, CaNode* node) {
    if (!j.is_object()) return Fail(at, "expected an object");
    if (!Int(j, "node", at, &node->node)) return false;
    if (node->node < -1 || node->node >= int64_t(call_.nodes.size()))
      return Fail(at + ".node", "expected -1 or a node of this call (it has " +
                                    std::to_string(call_.nodes.size()) + "), found " +
                                    std::to_string(node->node));
    if (!NonNegative(j, "id", at, &node->id)) return false;
    if (!Str(j, "type", at, &node->type)) return false;
    if (node->node >= 0 && call_.nodes[size_t(node->node)].type != node->type)
      return Fail(at + ".type", "'" + node->type + "' but node " + std::to_string(node->node) + " is '" +
                                    call_.nodes[size_t(node->node)].type + "'");
    if (!Bool(j, "needed", at, &node->needed)) return false;
    if (!NonNegative(j, "key_size", at, &node->key_size)) return false;
    if (node->key_size > kMaxKeySize)
      return Fail(at + ".key_size", "compiled autograd's keys hold at most 65535 bytes, found " +
                                        std::to_string(node->key_size));
    std::string hash;
    if (!Str(j, "key_hash", at, &hash)) return false;
    char* end = nullptr;
    node->key_hash = std::strtoull(hash.c_str(), &end, 16);
    if (hash.size() != 16 || *end || hash.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Fail(at + ".key_hash", "expected 16 lowercase hex digits, found '" + hash + "'");
    if (!NonNegative(j, "tensors", at, &node->tensors)) return false;
    if (!NonNegative(j, "scalars", at, &node->scalars)) return false;
    if (!NonNegative(j, "hooks", at, &node->hooks)) return false;
    auto sizes = j.find("sizes");
    if (sizes == j.end()) return Fail(at, "missing field 'sizes'");
    if (!sizes->is_array()) return Fail(at + ".sizes", "expected an array");
    if (int64_t(sizes->size()) > kMaxEntries) return Fail(at + ".sizes", "too many sizes");
    for (size_t k = 0; k < sizes->size(); ++k) {
      CaSize size;
      if (!ReadSize((*sizes)[k], at + ".sizes[" + std::to_string(k) + "]", *node, &size)) return false;
      node->sizes.push_back(size);
    }
    return true;
  }

  bool ReadSize(const json& j, const std::string& at, const CaNode& node, CaSize* size) {
    if (!j.is_object()) return Fail(at, "expected an object");
    if (!Int(j, "value", at, &size->value)) return false;
    std::string from;
    if (!Str(j, "from", at, &from)) return false;
    if (from == "edge")
      size->origin = CaSize::Origin::kEdge;
    else if (from != "state")
      return Fail(at + ".from", "expected \"edge\" or \"state\", found '" + from + "'");
    if (size->origin == CaSize::Origin::kEdge) {
      if (!NonNegative(j, "edge", at, &size->edge)) return false;
      if (node.node >= 0 && size->edge >= int64_t(call_.nodes[size_t(node.node)].next.size()))
        return Fail(at + ".edge", "node " + std::to_string(node.node) + " has " +
                                      std::to_string(call_.nodes[size_t(node.node)].next.size()) +
                                      " next edges, found " + std::to_string(size->edge));
    }
    if (!NonNegative(j, "dim", at, &size->dim)) return false;
    auto forced = j.find("forced_static");
    if (forced != j.end()) {
      if (!forced->is_boolean()) return Fail(at + ".forced_static", "expected a boolean");
      size->forced_static = forced->get<bool>();
    }
    return true;
  }

  static std::string Join(const std::string& at, const char* key) { return at.empty() ? key : at + "." + key; }

  const json* Field(const json& j, const char* key, const std::string& at) {
    auto it = j.find(key);
    if (it == j.end()) {
      Fail(at, std::string("missing field '") + key + "'");
      return nullptr;
    }
    return &*it;
  }

  bool Int(const json& j, const char* key, const std::string& at, int64_t* out) {
    const json* f = Field(j, key, at);
    if (!f) return false;
    if (!f->is_number_integer()) return Fail(Join(at, key), "expected an integer");
    if (f->is_number_unsigned() && f->get<uint64_t>() > uint64_t(INT64_MAX))
      return Fail(Join(at, key), "integer out of range");
    *out = f->get<int64_t>();
    return true;
  }

  bool NonNegative(const json& j, const char* key, const std::string& at, int64_t* out) {
    if (!Int(j, key, at, out)) return false;
    if (*out < 0) return Fail(Join(at, key), "expected a non-negative integer, found " + std::to_string(*out));
    return true;
  }

  bool Str(const json& j, const char* key, const std::string& at, std::string* out) {
    const json* f = Field(j, key, at);
    if (!f) return false;
    if (!f->is_string()) return Fail(Join(at, key), "expected a string");
    *out = f->get<std::string>();
    return true;
  }

  bool Bool(const json& j, const char* key, const std::string& at, bool* out) {
    const json* f = Field(j, key, at);
    if (!f) return false;
    if (!f->is_boolean()) return Fail(Join(at, key), "expected a boolean");
    *out = f->get<bool>();
    return true;
  }

  bool Fail(const std::string& at, const std::string& what) {
    *where_ = at;
    *what_ = what;
    return false;
  }

  const Call& call_;
  std::string* where_;
  std::string* what_;
};

}  // namespace

bool ParseCompiledAutogradKey(const json& block, const Call& call, CompiledAutogradKey* key, std::string* where,
                              std::string* what) {
  *key = CompiledAutogradKey();
  return BlockReader(call, where, what).Read(block, key);
}

}  // namespace cautograd
