#include "lib/repro/python_repro.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "lib/trace/encoding.h"
#include "lib/trace/human.h"
#include "lib/trace/tolerance.h"
#include "lib/trace/trace_io.h"

namespace cautograd {

namespace {

// The dtypes, layouts and memory formats a trace may name, as torch spells
// them: a name outside these is refused, never written into the program.
const std::map<std::string, std::string> kTorchDtypes = {
    {"float32", "float32"},     {"float64", "float64"},     {"float16", "float16"},
    {"bfloat16", "bfloat16"},   {"complex64", "complex64"}, {"complex128", "complex128"},
    {"int8", "int8"},           {"uint8", "uint8"},         {"int16", "int16"},
    {"int32", "int32"},         {"int64", "int64"},         {"bool", "bool"},
};
const std::map<std::string, std::string> kTorchLayouts = {
    {"strided", "strided"}, {"sparse_coo", "sparse_coo"}, {"sparse_csr", "sparse_csr"}};
const std::map<std::string, std::string> kTorchMemoryFormats = {{"contiguous", "contiguous_format"},
                                                                {"preserve", "preserve_format"},
                                                                {"channels_last", "channels_last"},
                                                                {"channels_last_3d", "channels_last_3d"}};

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// A Python str literal of any bytes: printable ASCII as is, the rest
// escaped, so nothing in it can end the literal. Non-ASCII goes through a
// bytes literal decoded as UTF-8.
std::string PyString(const std::string& s) {
  bool ascii = true;
  std::string body;
  for (unsigned char c : s) {
    if (c >= 0x80) ascii = false;
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      body += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      body += buf;
    }
  }
  return ascii ? "'" + body + "'" : "b'" + body + "'.decode('utf-8', 'replace')";
}

std::string PyFloat(double v) {
  if (std::isnan(v)) return "float('nan')";
  if (std::isinf(v)) return v > 0 ? "float('inf')" : "float('-inf')";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

template <typename T, typename F>
std::string PyList(const std::vector<T>& items, F f) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + f(items[i]);
  return out + "]";
}

std::string Var(int64_t tensor) { return "t" + std::to_string(tensor); }

// Strides Python can give a fresh tensor: no dimension of size > 1 shares
// memory with another. Others (an expanded tensor's 0) are made dense.
bool NonOverlapping(const TensorInfo& t) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (size_t d = 0; d < t.shape.size() && d < t.strides.size(); ++d)
    if (t.shape[d] > 1) dims.push_back({t.strides[d], t.shape[d]});
  std::sort(dims.begin(), dims.end());
  int64_t need = 1;
  for (const auto& [stride, size] : dims) {
    if (stride < need) return false;
    need = stride * size;
  }
  return t.strides.size() == t.shape.size();
}

class Emitter {
 public:
  Emitter(const Trace& trace, const ReproOptions& options, Repro* repro, std::string* err)
      : trace_(trace), call_(trace.calls[size_t(options.call)]), options_(options), repro_(repro), err_(err) {}

  bool Run() {
    for (const TensorInfo& t : call_.tensors) tensors_[t.id] = &t;
    for (const Value& v : call_.values) {
      if (v.when == Value::When::kEnd)
        end_values_.push_back(&v);
      else
        values_[v.tensor][v.when == Value::When::kFirstUse ? -1 : v.op] = &v;
    }
    const int64_t first = options_.first_op < 0 ? 0 : options_.first_op;
    const int64_t last = options_.last_op < 0 ? int64_t(call_.ops.size()) - 1 : options_.last_op;
    for (const Op& op : call_.ops)
      if (op.index >= first && op.index <= last) ops_.push_back(&op);
    if (ops_.empty()) return Fail("no op of call " + std::to_string(call_.index) + " is in " + RangeText());
    for (const Op& op : call_.ops)
      for (const Arg& a : op.outputs) ForEachTensor(a, [&](int64_t id) { writers_[id].push_back(op.index); });

    std::string body;
    for (const Op* op : ops_) {
      std::string line;
      if (!OpLine(*op, &line)) return false;
      body += line;
    }
    // Values at the end of the call say something only if the range runs
    // to its end: an op after the range may still write them.
    const bool to_end = ops_.back() == &call_.ops.back();
    std::string ends;
    for (const Value* v : end_values_) {
      if (!to_end || !defined_.count(v->tensor)) continue;
      std::string expected;
      if (!Load(v->tensor, *v, &expected)) return false;
      const std::string name = "r" + std::to_string(v->tensor) + "_end";
      recorded_ += name + " = " + expected + "\n";
      ends += "check(" + PyString("final value of " + TensorName(v->tensor)) + ", " + Var(v->tensor) + ", " + name +
              ", " + TolText(v->dtype) + ")\n";
      ++repro_->checks;
    }
    repro_->ops = int64_t(ops_.size());
    repro_->program = Header() + Helpers() + "\n# --- the recorded inputs ---\n" + inputs_ +
                      "\n# --- what the trace recorded them to give ---\n" + recorded_ +
                      "\n# --- the ops, each checked against the recording where it kept the output ---\n" + body +
                      (ends.empty() ? "" : "\n# --- values at the end of the call ---\n" + ends) + Footer();
    return true;
  }

 private:
  bool Fail(const std::string& message) {
    *err_ = message;
    return false;
  }

  std::string RangeText() const {
    if (options_.first_op < 0 && options_.last_op < 0) return "the call";
    if (options_.first_op == options_.last_op) return "op " + std::to_string(options_.first_op);
    return "ops " + std::to_string(options_.first_op) + "-" + std::to_string(options_.last_op);
  }

  std::string Where(const Op& op) const { return "op " + std::to_string(op.index) + " (" + OpLabel(op) + ")"; }

  std::string TensorName(int64_t id) const {
    auto it = tensors_.find(id);
    if (it != tensors_.end() && !it->second->name.empty()) return "t" + std::to_string(id) + " (" + it->second->name + ")";
    return "t" + std::to_string(id);
  }

  std::string TolText(const std::string& dtype) const {
    const Tolerance t = DefaultTolerance(dtype);
    char buf[64];
    std::snprintf(buf, sizeof buf, "rtol=%g, atol=%g", t.rtol, t.atol);
    return buf;
  }

  // A Python expression making tensor `id` hold `value`'s bytes.
  bool Load(int64_t id, const Value& value, std::string* expr) {
    auto it = tensors_.find(id);
    if (it == tensors_.end()) return Fail("value of t" + std::to_string(id) + " names a tensor the call does not have");
    const TensorInfo& t = *it->second;
    auto dtype = kTorchDtypes.find(t.dtype);
    if (dtype == kTorchDtypes.end())
      return Fail("t" + std::to_string(id) + " has dtype '" + t.dtype + "', which the reproducer cannot make");
    if (!t.layout.empty())
      return Fail("t" + std::to_string(id) + " is " + t.layout + "; the reproducer makes strided tensors only");
    std::string bytes, why;
    if (!ReadValueBytes(call_, value, &bytes, &why)) return Fail(why);
    std::string source;
    if (int64_t(bytes.size()) <= options_.inline_limit) {
      source = "b64(" + PyString(Base64Encode(bytes)) + ")";
      ++repro_->inputs_inline;
      repro_->inline_bytes += int64_t(bytes.size());
    } else {
      source = "side(" + std::to_string(repro_->data.size()) + ", " + std::to_string(bytes.size()) + ")";
      repro_->data += bytes;
      ++repro_->inputs_in_data;
    }
    const std::string shape = PyList(t.shape, [](int64_t v) { return std::to_string(v); });
    const std::string strides = NonOverlapping(t) ? PyList(t.strides, [](int64_t v) { return std::to_string(v); })
                                                  : std::string("None");
    *expr = "make(" + source + ", torch." + dtype->second + ", " + shape + ", " + strides + ", " +
            PyString(t.device.empty() ? "cpu" : t.device) + ")";
    return true;
  }

  // Makes tensor `id` defined before op `at`: a variable an earlier op of
  // the range made, or its recorded value at that moment.
  bool Input(int64_t id, const Op& at, const std::string& arg) {
    if (defined_.count(id)) return true;
    // The last op before `at` that wrote it decides which value is right.
    int64_t writer = -1;
    for (int64_t w : writers_[id])
      if (w < at.index) writer = std::max(writer, w);
    const auto& kept = values_[id];
    auto it = kept.find(writer);
    if (it == kept.end()) {
      if (writer < 0)
        return Fail(Where(at) + ": argument '" + arg + "' is " + TensorName(id) +
                    ", which came into the call, and the trace did not keep its value; record with --values inputs "
                    "or all");
      return Fail(Where(at) + ": argument '" + arg + "' is " + TensorName(id) + ", made by op " +
                  std::to_string(writer) + ", whose output the trace did not keep; start the range there (--ops " +
                  std::to_string(writer) + "-" + std::to_string(at.index) + ") or record with --values all");
    }
    std::string expr;
    if (!Load(id, *it->second, &expr)) return false;
    inputs_ += Var(id) + " = " + expr + "\n";
    defined_.insert(id);
    return true;
  }

  bool ArgText(const Arg& a, const Op& op, const std::string& name, std::string* out) {
    using K = Arg::Kind;
    switch (a.kind) {
      case K::kNone:
        *out = "None";
        return true;
      case K::kTensor:
        if (a.tensor < 0) {
          *out = "None";
          return true;
        }
        if (!Input(a.tensor, op, name)) return false;
        *out = Var(a.tensor);
        return true;
      case K::kTensorList: {
        std::string list = "[";
        for (size_t i = 0; i < a.ints.size(); ++i) {
          if (a.ints[i] >= 0 && !Input(a.ints[i], op, name)) return false;
          list += std::string(i ? ", " : "") + (a.ints[i] < 0 ? "None" : Var(a.ints[i]));
        }
        *out = list + "]";
        return true;
      }
      case K::kInt:
        *out = std::to_string(a.i);
        return true;
      case K::kFloat:
        *out = PyFloat(a.f);
        return true;
      case K::kBool:
        *out = a.b ? "True" : "False";
        return true;
      case K::kString:
        *out = PyString(a.text);
        return true;
      case K::kIntList:
        *out = PyList(a.ints, [](int64_t v) { return std::to_string(v); });
        return true;
      case K::kFloatList:
        *out = PyList(a.floats, PyFloat);
        return true;
      case K::kBoolList:
        *out = PyList(a.bools, [](uint8_t b) { return std::string(b ? "True" : "False"); });
        return true;
      case K::kDtype:
      case K::kLayout:
      case K::kMemoryFormat: {
        const auto& names = a.kind == K::kDtype ? kTorchDtypes : a.kind == K::kLayout ? kTorchLayouts : kTorchMemoryFormats;
        auto it = names.find(a.text);
        if (it == names.end()) return Fail(Where(op) + ": argument '" + name + "' is '" + a.text + "', which torch has no name for here");
        *out = "torch." + it->second;
        return true;
      }
      case K::kDevice:
        *out = "torch.device(" + PyString(a.text) + ")";
        return true;
      case K::kList: {
        std::string list = "[";
        for (size_t i = 0; i < a.items.size(); ++i) {
          std::string item;
          if (!ArgText(a.items[i], op, name, &item)) return false;
          list += (i ? ", " : "") + item;
        }
        *out = list + "]";
        return true;
      }
      case K::kOpaque:
        return Fail(Where(op) + ": argument '" + name + "' is a " + a.text +
                    " the recorder could not keep; leave this op out of the range (--ops)");
    }
    return Fail(Where(op) + ": argument '" + name + "' has an unknown kind");
  }

  bool OpLine(const Op& op, std::string* line) {
    const size_t sep = op.name.find("::");
    const std::string ns = sep == std::string::npos ? "" : op.name.substr(0, sep);
    const std::string name = sep == std::string::npos ? "" : op.name.substr(sep + 2);
    const std::string overload = op.overload.empty() ? "default" : op.overload;
    if (!IsIdentifier(ns) || !IsIdentifier(name) || !IsIdentifier(overload))
      return Fail(Where(op) + ": '" + OpLabel(op) + "' is not an operator name the reproducer can write");
    std::string args;
    for (size_t i = 0; i < op.args.size(); ++i) {
      const std::string arg_name = i < op.arg_names.size() ? op.arg_names[i] : "#" + std::to_string(i);
      std::string text;
      if (!ArgText(op.args[i], op, arg_name, &text)) return false;
      args += std::string(args.empty() ? "" : ", ") + "(" + PyString(arg_name) + ", " + text + ")";
    }
    *line = "# op " + std::to_string(op.index) + (op.node >= 0 ? ", node " + std::to_string(op.node) : ", engine") +
            ", " + PhaseName(op.phase) + "\n";
    *line += "out = run(" + PyString(std::to_string(op.index) + " " + OpLabel(op)) + ", torch.ops." + ns + "." + name +
             "." + overload + ", [" + args + "])\n";
    // Outputs: name each; check the ones the trace kept right after this op.
    for (size_t i = 0; i < op.outputs.size(); ++i) {
      const Arg& o = op.outputs[i];
      const std::string pick = op.outputs.size() == 1 ? "out" : "out[" + std::to_string(i) + "]";
      if (o.kind == Arg::Kind::kTensor && o.tensor >= 0) {
        *line += Var(o.tensor) + " = " + pick + "\n";
        defined_.insert(o.tensor);
        if (!CheckAfter(op, o.tensor, "output " + std::to_string(i), line)) return false;
      } else if (o.kind == Arg::Kind::kTensorList) {
        for (size_t k = 0; k < o.ints.size(); ++k) {
          if (o.ints[k] < 0) continue;
          *line += Var(o.ints[k]) + " = " + pick + "[" + std::to_string(k) + "]\n";
          defined_.insert(o.ints[k]);
          if (!CheckAfter(op, o.ints[k], "output " + std::to_string(i) + "[" + std::to_string(k) + "]", line))
            return false;
        }
      }
    }
    return true;
  }

  bool CheckAfter(const Op& op, int64_t tensor, const std::string& what, std::string* line) {
    auto vs = values_.find(tensor);
    if (vs == values_.end()) return true;
    auto v = vs->second.find(op.index);
    if (v == vs->second.end()) return true;
    std::string expected;
    if (!Load(tensor, *v->second, &expected)) return false;
    const std::string name = "r" + std::to_string(tensor) + "_after_" + std::to_string(op.index);
    recorded_ += name + " = " + expected + "\n";
    *line += "check(" + PyString(Where(op) + " " + what + " " + TensorName(tensor)) + ", " + Var(tensor) + ", " +
             name + ", " + TolText(v->second->dtype) + ")\n";
    ++repro_->checks;
    return true;
  }

  std::string Header() const {
    std::string h = "#!/usr/bin/env python3\n";
    h += "# A reproducer written by cautograd " + std::string(kToolVersion) + " from " +
         PyComment(options_.source.empty() ? "a trace" : options_.source) + ": call " +
         std::to_string(call_.index) + ", " + RangeText() + ", " + std::to_string(ops_.size()) + " aten ops.\n";
    h += "# Recorded with libtorch " + PyComment(trace_.meta.libtorch_version) +
         ". It runs each op on the recorded inputs and checks " + std::to_string(repro_->checks) +
         " recorded outputs;\n# it needs only torch. Exit status: 0 all match, 1 a mismatch, 2 an op failed.\n";
    h += "# Inputs up to " + std::to_string(options_.inline_limit) + " bytes are inline (base64)";
    h += options_.data_name.empty() ? ".\n" : "; larger ones are in " + PyComment(options_.data_name) + " beside it.\n";
    h += "# It holds recorded tensor values: the model's weights, inputs or gradients.\n";
    return h + "import base64\nimport os\nimport sys\n\nimport torch\n\n";
  }

  static std::string PyComment(const std::string& s) {
    std::string out;
    for (unsigned char c : s) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
    return out;
  }

  std::string Helpers() const {
    std::string h;
    h += "DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), " +
         PyString(options_.data_name.empty() ? "" : options_.data_name) + ")\n";
    h += R"PY(_data = None


def side(offset, nbytes):
    global _data
    if _data is None:
        with open(DATA, "rb") as f:
            _data = f.read()
    return _data[offset:offset + nbytes]


def b64(text):
    return base64.b64decode(text)


def make(raw, dtype, shape, strides, device):
    """A tensor of `shape` holding `raw` (row-major, little-endian) with the
    recorded strides where they do not overlap."""
    flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
    dense = flat.reshape(shape)
    if strides is None:
        return dense.clone().to(device)
    out = torch.empty_strided(shape, strides, dtype=dtype, device=device)
    out.copy_(dense)
    return out


def run(what, op, args):
    """Calls `op` the way its schema takes the recorded arguments:
    positionally up to the first keyword-only one, by name after."""
    given = dict(args)
    schema = op._schema.arguments
    unknown = [name for name in given if name not in {a.name for a in schema}]
    if unknown:
        print(f"op {what}: this torch's schema {op._schema} has no argument {unknown[0]!r}")
        sys.exit(2)
    last = max([i for i, a in enumerate(schema) if a.name in given and not a.kwarg_only], default=-1)
    positional, keywords = [], {}
    for i, a in enumerate(schema):
        if a.kwarg_only:
            if a.name in given:
                keywords[a.name] = given[a.name]
        elif i <= last:
            if a.name in given:
                positional.append(given[a.name])
            elif a.has_default_value():
                positional.append(a.default_value)
            else:
                print(f"op {what}: the trace has no argument {a.name!r}, which {op._schema} needs")
                sys.exit(2)
    try:
        with torch.no_grad():
            return op(*positional, **keywords)
    except Exception as e:  # the op itself failed: that may be the bug
        print(f"op {what} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        sys.exit(2)


checked = 0
mismatches = 0


def check(what, actual, expected, rtol, atol):
    global checked, mismatches
    checked += 1
    if not isinstance(actual, torch.Tensor):
        print(f"MISMATCH {what}: got {type(actual).__name__}, recorded a tensor")
        mismatches += 1
        return
    a, e = actual.detach().cpu(), expected.cpu()
    if a.dtype != e.dtype or a.shape != e.shape:
        print(f"MISMATCH {what}: got {a.dtype}{list(a.shape)}, recorded {e.dtype}{list(e.shape)}")
        mismatches += 1
        return
    if a.is_floating_point() or a.is_complex():
        wide = torch.complex128 if a.is_complex() else torch.float64
        a, e = a.to(wide), e.to(wide)
        close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = a == e
    if bool(close.all()):
        return
    mismatches += 1
    bad = int((~close).sum())
    diff = (a - e).abs() if (a.is_floating_point() or a.is_complex()) else (a != e).to(torch.int64)
    where = int(torch.argmax(torch.where(close, torch.zeros_like(diff), diff).reshape(-1)))
    print(f"MISMATCH {what}: {bad} of {a.numel()} elements beyond rtol={rtol:g}, atol={atol:g}; "
          f"worst at flat index {where}: got {a.reshape(-1)[where].item()}, recorded {e.reshape(-1)[where].item()}")

)PY";
    return h;
  }

  std::string Footer() const {
    return R"PY(
print(f"{checked - mismatches} of {checked} recorded outputs match" + (f"; {mismatches} do not" if mismatches else ""))
sys.exit(1 if mismatches else 0)
)PY";
  }

  const Trace& trace_;
  const Call& call_;
  const ReproOptions& options_;
  Repro* repro_;
  std::string* err_;
  std::map<int64_t, const TensorInfo*> tensors_;
  std::map<int64_t, std::map<int64_t, const Value*>> values_;  // tensor -> op (-1: first use) -> value
  std::vector<const Value*> end_values_;
  std::vector<const Op*> ops_;
  std::map<int64_t, std::vector<int64_t>> writers_;  // tensor -> the ops of the call that output it
  std::set<int64_t> defined_;
  std::string inputs_, recorded_;
};

}  // namespace

bool EmitPythonRepro(const Trace& trace, const ReproOptions& options, Repro* repro, std::string* err) {
  if (options.call < 0 || options.call >= int64_t(trace.calls.size())) {
    *err = "no call " + std::to_string(options.call) + " in the trace: it has " + std::to_string(trace.calls.size());
    return false;
  }
  *repro = Repro();
  return Emitter(trace, options, repro, err).Run();
}

}  // namespace cautograd
