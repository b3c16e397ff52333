// Writes a trace as JSON text directly, without building a JSON document
// first: the shim serializes every call while the program waits, so this is
// on the recorded program's critical path. Layout: one record (node, op,
// tensor, value, guard entry) per line, so traces diff well in git.
#include <charconv>
#include <cstdio>
#include <cmath>
#include <string>

#include "lib/trace/encoding.h"
#include "lib/trace/trace_io.h"
#include "lib/trace/trace_json.h"

namespace cautograd {

namespace {

class Writer {
 public:
  explicit Writer(std::string* out) : out_(*out) {}

  // Object and array punctuation; `Key` writes the comma before a member.
  void Open(char c) {
    out_ += c;
    first_ = true;
  }
  void Close(char c) {
    if (newline_) out_ += '\n';
    newline_ = false;
    out_ += c;
    first_ = false;
  }
  void Key(const char* key) {
    Comma();
    out_ += '"';
    out_ += key;
    out_ += "\":";
    first_ = true;
  }
  // Before an element of an array.
  void Next() { Comma(); }
  // A line break before whatever comes next, after its comma.
  void Line() { newline_ = true; }

  void Str(const std::string& s) {
    out_ += '"';
    for (char c : s) {
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\r':
          out_ += "\\r";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += c;
          }
      }
    }
    out_ += '"';
    first_ = false;
  }
  void Int(int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    first_ = false;
  }
  void Uint(uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    first_ = false;
  }
  // Shortest text that reads back to the same double; JSON has no NaN or
  // infinity, so those are strings the reader knows.
  void Double(double v) {
    if (std::isnan(v)) return Raw("\"nan\"");
    if (std::isinf(v)) return Raw(v > 0 ? "\"inf\"" : "\"-inf\"");
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    first_ = false;
  }
  void Bool(bool v) { Raw(v ? "true" : "false"); }
  void Null() { Raw("null"); }
  void Raw(const char* text) {
    out_ += text;
    first_ = false;
  }
  void Ints(const std::vector<int64_t>& v) {
    Open('[');
    for (int64_t x : v) {
      Next();
      Int(x);
    }
    Close(']');
  }
  void Strs(const std::vector<std::string>& v) {
    Open('[');
    for (const std::string& x : v) {
      Next();
      Str(x);
    }
    Close(']');
  }
  // A tensor id, or null for -1 (undefined).
  void TensorId(int64_t id) {
    if (id < 0)
      Null();
    else
      Int(id);
  }

 private:
  void Comma() {
    if (!first_) out_ += ',';
    if (newline_) out_ += '\n';
    newline_ = false;
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
  bool newline_ = false;
};

void WriteArg(Writer& w, const Arg& a) {
  using K = Arg::Kind;
  switch (a.kind) {
    case K::kNone:
      w.Key("none");
      w.Bool(true);
      break;
    case K::kTensor:
      w.Key("tensor");
      w.TensorId(a.tensor);
      break;
    case K::kTensorList:
      w.Key("tensors");
      w.Open('[');
      for (int64_t id : a.ints) {
        w.Next();
        w.TensorId(id);
      }
      w.Close(']');
      break;
    case K::kInt:
      w.Key("int");
      w.Int(a.i);
      break;
    case K::kFloat:
      w.Key("float");
      w.Double(a.f);
      break;
    case K::kBool:
      w.Key("bool");
      w.Bool(a.b);
      break;
    case K::kString:
      w.Key("str");
      w.Str(a.text);
      break;
    case K::kIntList:
      w.Key("ints");
      w.Ints(a.ints);
      break;
    case K::kFloatList:
      w.Key("floats");
      w.Open('[');
      for (double f : a.floats) {
        w.Next();
        w.Double(f);
      }
      w.Close(']');
      break;
    case K::kBoolList:
      w.Key("bools");
      w.Open('[');
      for (bool b : a.bools) {
        w.Next();
        w.Bool(b);
      }
      w.Close(']');
      break;
    case K::kDtype:
      w.Key("dtype");
      w.Str(a.text);
      break;
    case K::kDevice:
      w.Key("device");
      w.Str(a.text);
      break;
    case K::kLayout:
      w.Key("layout");
      w.Str(a.text);
      break;
    case K::kMemoryFormat:
      w.Key("memory_format");
      w.Str(a.text);
      break;
    case K::kList:
      w.Key("list");
      w.Open('[');
      for (const Arg& item : a.items) {
        w.Next();
        w.Open('{');
        WriteArg(w, item);
        w.Close('}');
      }
      w.Close(']');
      break;
    case K::kOpaque:
      w.Key("opaque");
      w.Str(a.text);
      break;
  }
  if (a.is_size) {
    w.Key("size");
    w.Bool(true);
  }
}

// "key":[\n{record},\n{record}\n]
template <typename T, typename F>
void Records(Writer& w, const char* key, const std::vector<T>& items, F write) {
  w.Key(key);
  w.Open('[');
  for (const T& item : items) {
    w.Line();
    w.Next();
    w.Open('{');
    write(item);
    w.Close('}');
  }
  if (!items.empty()) w.Line();
  w.Close(']');
}

void WriteCompiledAutograd(Writer& w, const CompiledAutogradKey& ca) {
  w.Key("compiled_autograd");
  w.Open('{');
  w.Key("ran");
  w.Str(CaRanName(ca.ran));
  w.Key("error");
  if (ca.error.empty())
    w.Null();
  else
    w.Str(ca.error);
  w.Key("error_at");
  w.Int(ca.error_at);
  Records(w, "nodes", ca.nodes, [&](const CaNode& n) {
    w.Key("node");
    w.Int(n.node);
    w.Key("id");
    w.Int(n.id);
    w.Key("type");
    w.Str(n.type);
    w.Key("needed");
    w.Bool(n.needed);
    w.Key("key_size");
    w.Int(n.key_size);
    w.Key("key_hash");
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(n.key_hash));
    w.Str(hash);
    w.Key("tensors");
    w.Int(n.tensors);
    w.Key("scalars");
    w.Int(n.scalars);
    w.Key("hooks");
    w.Int(n.hooks);
    w.Key("sizes");
    w.Open('[');
    for (const CaSize& size : n.sizes) {
      w.Next();
      w.Open('{');
      w.Key("value");
      w.Int(size.value);
      w.Key("from");
      w.Str(CaSizeOriginName(size.origin));
      if (size.origin == CaSize::Origin::kEdge) {
        w.Key("edge");
        w.Int(size.edge);
      }
      w.Key("dim");
      w.Int(size.dim);
      if (size.forced_static) {
        w.Key("forced_static");
        w.Bool(true);
      }
      w.Close('}');
    }
    w.Close(']');
  });
  w.Close('}');
}

// `stored`, for version 2: how each value was stored, from *next_stored on.
void WriteCall(Writer& w, const Call& call, const std::vector<StoredRef>* stored, size_t* next_stored) {
  w.Open('{');
  w.Key("index");
  w.Int(call.index);
  w.Key("api");
  w.Str(call.api);
  w.Key("create_graph");
  w.Bool(call.create_graph);
  w.Key("keep_graph");
  w.Bool(call.keep_graph);
  w.Key("duration_us");
  w.Double(call.duration_us);
  w.Key("start_unix_s");
  w.Double(call.start_unix_s);
  w.Key("roots");
  w.Ints(call.roots);
  w.Line();
  Records(w, "storages", call.storages, [&](const StorageInfo& s) {
    w.Key("id");
    w.Int(s.id);
    w.Key("nbytes");
    w.Int(s.nbytes);
    w.Key("device");
    w.Str(s.device);
  });
  w.Line();
  Records(w, "tensors", call.tensors, [&](const TensorInfo& t) {
    w.Key("id");
    w.Int(t.id);
    w.Key("shape");
    w.Ints(t.shape);
    w.Key("strides");
    w.Ints(t.strides);
    w.Key("offset");
    w.Int(t.offset);
    w.Key("dtype");
    w.Str(t.dtype);
    w.Key("device");
    w.Str(t.device);
    w.Key("requires_grad");
    w.Bool(t.requires_grad);
    w.Key("storage");
    w.Int(t.storage);
    w.Key("roles");
    w.Strs(RoleNames(t.roles));
    if (!t.name.empty()) {
      w.Key("name");
      w.Str(t.name);
    }
    if (!t.layout.empty()) {
      w.Key("layout");
      w.Str(t.layout);
    }
    if (t.sparse_dim >= 0) {
      w.Key("sparse_dim");
      w.Int(t.sparse_dim);
    }
  });
  w.Line();
  Records(w, "nodes", call.nodes, [&](const Node& n) {
    w.Key("id");
    w.Int(n.id);
    w.Key("type");
    w.Str(n.type);
    w.Key("seq");
    if (n.seq_is_max)
      w.Str("max");
    else
      w.Uint(n.seq);
    w.Key("topo");
    w.Uint(n.topo);
    w.Key("inputs");
    w.Open('[');
    for (const InputMeta& in : n.inputs) {
      w.Next();
      w.Open('{');
      w.Key("shape");
      w.Ints(in.shape);
      w.Key("dtype");
      w.Str(in.dtype);
      w.Key("device");
      w.Str(in.device);
      w.Close('}');
    }
    w.Close(']');
    w.Key("next");
    w.Open('[');
    for (const Edge& e : n.next) {
      w.Next();
      if (e.node < 0) {
        w.Null();
        continue;
      }
      w.Open('{');
      w.Key("node");
      w.Int(e.node);
      w.Key("input");
      w.Int(e.input);
      w.Close('}');
    }
    w.Close(']');
    w.Key("hooks");
    w.Open('[');
    for (const Hook& h : n.hooks) {
      w.Next();
      w.Open('{');
      w.Key("kind");
      w.Str(HookKindName(h.kind));
      w.Key("lang");
      w.Str(h.lang);
      w.Key("type");
      w.Str(h.type);
      w.Close('}');
    }
    w.Close(']');
    w.Key("executed");
    w.Bool(n.executed);
    w.Key("exec_order");
    w.Int(n.exec_order);
    w.Key("grads_in");
    w.Ints(n.grads_in);
    w.Key("start_us");
    w.Double(n.start_us);
    w.Key("duration_us");
    w.Double(n.duration_us);
    if (n.leaf) {
      const LeafInfo& l = *n.leaf;
      w.Key("leaf");
      w.Open('{');
      w.Key("tensor");
      w.Int(l.tensor);
      w.Key("shape");
      w.Ints(l.shape);
      w.Key("dtype");
      w.Str(l.dtype);
      w.Key("requires_grad");
      w.Bool(l.requires_grad);
      w.Key("grad_defined_before");
      w.Bool(l.grad_defined_before);
      w.Key("grad_before");
      w.Int(l.grad_before);
      w.Key("grad_after");
      w.Int(l.grad_after);
      if (!l.name.empty()) {
        w.Key("name");
        w.Str(l.name);
      }
      w.Close('}');
    }
  });
  w.Line();
  Records(w, "ops", call.ops, [&](const Op& op) {
    w.Key("op");
    w.Str(op.name);
    w.Key("overload");
    w.Str(op.overload);
    w.Key("node");
    w.Int(op.node);
    w.Key("phase");
    w.Str(PhaseName(op.phase));
    w.Key("thread");
    w.Int(op.thread);
    w.Key("start_us");
    w.Double(op.start_us);
    w.Key("duration_us");
    w.Double(op.duration_us);
    w.Key("args");
    w.Open('[');
    for (size_t i = 0; i < op.args.size(); ++i) {
      w.Next();
      w.Open('{');
      w.Key("name");
      w.Str(i < op.arg_names.size() ? op.arg_names[i] : std::string());
      WriteArg(w, op.args[i]);
      w.Close('}');
    }
    w.Close(']');
    w.Key("outputs");
    w.Open('[');
    for (const Arg& out : op.outputs) {
      w.Next();
      w.Open('{');
      WriteArg(w, out);
      w.Close('}');
    }
    w.Close(']');
  });
  w.Line();
  Records(w, "values", call.values, [&](const Value& v) {
    w.Key("tensor");
    w.Int(v.tensor);
    w.Key("when");
    w.Str(ValueWhenName(v.when));
    if (v.when == Value::When::kAfterOp) {
      w.Key("op");
      w.Int(v.op);
    }
    w.Key("dtype");
    w.Str(v.dtype);
    w.Key("numel");
    w.Int(v.numel);
    if (stored) {
      const StoredRef& ref = (*stored)[(*next_stored)++];
      w.Key("entry");
      w.Str(ref.entry);
      w.Key("crc32");
      w.Str(Hex32(ref.crc));
      if (ref.zstd) {
        w.Key("compression");
        w.Str("zstd");
      }
      return;
    }
    w.Key("encoding");
    w.Str("base64");
    w.Key("crc32");
    w.Str(Crc32Hex(v.data));
    w.Key("data");
    w.Str(Base64Encode(v.data));
  });
  w.Line();
  const Guards& g = call.guards;
  w.Key("guards");
  w.Open('{');
  w.Key("source");
  w.Str(call.compiled_autograd.present() ? "compiled_autograd" : "simulated");
  Records(w, "nodes", g.nodes, [&](const GuardNode& n) {
    w.Key("node");
    w.Int(n.node);
    w.Key("type");
    w.Str(n.type);
    w.Key("hooks");
    w.Strs(n.hook_kinds);
  });
  w.Line();
  Records(w, "tensors", g.tensors, [&](const GuardTensor& t) {
    w.Key("node");
    w.Int(t.node);
    w.Key("tensor");
    w.Int(t.tensor);
    w.Key("role");
    w.Str(t.role);
    w.Key("defined");
    w.Bool(t.defined);
    w.Key("dtype");
    w.Str(t.dtype);
    w.Key("device");
    w.Str(t.device);
    w.Key("requires_grad");
    w.Bool(t.requires_grad);
  });
  w.Line();
  Records(w, "scalars", g.scalars, [&](const GuardScalar& s) {
    w.Key("node");
    w.Int(s.node);
    w.Key("op");
    w.Int(s.op);
    w.Key("arg");
    w.Str(s.arg);
    w.Key("value");
    w.Str(s.value);
  });
  w.Line();
  Records(w, "sizes", g.sizes, [&](const GuardSize& s) {
    w.Key("node");
    w.Int(s.node);
    w.Key("tensor");
    w.Int(s.tensor);
    w.Key("op");
    w.Int(s.op);
    w.Key("role");
    w.Str(s.role);
    w.Key("what");
    w.Str(s.what);
    w.Key("dim");
    w.Int(s.dim);
    w.Key("value");
    w.Int(s.value);
  });
  w.Close('}');
  if (call.compiled_autograd.present()) {
    w.Line();
    WriteCompiledAutograd(w, call.compiled_autograd);
  }
  w.Close('}');
}

}  // namespace

std::string SerializeTrace(const Trace& trace) { return SerializeTraceJson(trace, nullptr); }

std::string SerializeTraceJson(const Trace& trace, const std::vector<StoredRef>* stored) {
  std::string out;
  out.reserve(1 << 16);
  Writer w(&out);
  const Meta& m = trace.meta;
  w.Open('{');
  w.Key("format");
  w.Str(kTraceFormatName);
  w.Key("version");
  w.Int(stored ? 2 : 1);
  w.Line();
  w.Key("meta");
  w.Open('{');
  w.Key("tool_version");
  w.Str(m.tool_version);
  w.Key("libtorch_version");
  w.Str(m.libtorch_version);
  w.Key("command");
  w.Strs(m.command);
  w.Key("time");
  w.Str(m.time);
  w.Key("host");
  w.Str(m.host);
  w.Key("seed");
  if (m.seed)
    w.Uint(*m.seed);
  else
    w.Null();
  w.Key("values");
  w.Str(ValuesModeName(m.values));
  w.Close('}');
  w.Line();
  if (!trace.skipped.empty()) {
    Records(w, "skipped", trace.skipped, [&](const SkippedCall& s) {
      w.Key("program_call");
      w.Int(s.program_call);
      w.Key("process");
      w.Int(s.process);
      w.Key("reason");
      w.Str(s.reason);
      w.Key("start_unix_s");
      w.Double(s.start_unix_s);
    });
    w.Line();
  }
  w.Key("calls");
  w.Open('[');
  size_t next_stored = 0;
  for (const Call& call : trace.calls) {
    w.Line();
    w.Next();
    WriteCall(w, call, stored, &next_stored);
  }
  w.Close(']');
  w.Close('}');
  out += '\n';
  return out;
}

}  // namespace cautograd
