// lib/repro: the Python reproducer, on the hand-built small trace: what it
// refuses (missing values, names Python could read as code), and that what
// the trace says reaches the program as data only.
#include <gtest/gtest.h>

#include <sstream>

#include "lib/repro/python_repro.h"
#include "tests/unit/small_trace.h"

namespace cautograd {
namespace {

// The small trace with x's value kept, so that the whole call reproduces.
Trace WithInputs() {
  Trace trace = SmallTrace();
  Value x;
  x.tensor = 2;
  x.dtype = "float32";
  x.numel = 6;
  x.data = std::string(24, '\0');
  trace.calls[0].values.push_back(x);
  return trace;
}

bool Emit(const Trace& trace, const ReproOptions& options, Repro* repro, std::string* err) {
  return EmitPythonRepro(trace, options, repro, err);
}

TEST(PythonRepro, RunsEveryOpOnTheRecordedInputs) {
  Repro repro;
  std::string err;
  ASSERT_TRUE(Emit(WithInputs(), ReproOptions(), &repro, &err)) << err;
  EXPECT_EQ(repro.ops, 2);
  EXPECT_EQ(repro.inputs_inline, 2);  // the root gradient and x
  EXPECT_NE(repro.program.find("torch.ops.aten.expand.default"), std::string::npos);
  EXPECT_NE(repro.program.find("torch.ops.aten.mul.Tensor"), std::string::npos);
  EXPECT_TRUE(repro.data.empty());
}

TEST(PythonRepro, LargeInputsGoToTheSideFile) {
  ReproOptions options;
  options.inline_limit = 8;
  options.data_name = "r.bin";
  Repro repro;
  std::string err;
  ASSERT_TRUE(Emit(WithInputs(), options, &repro, &err)) << err;
  EXPECT_EQ(repro.inputs_in_data, 1);
  EXPECT_EQ(repro.data.size(), 24u);
  EXPECT_NE(repro.program.find("'r.bin'"), std::string::npos);
}

TEST(PythonRepro, AnInputWhoseValueWasNotKeptIsRefused) {
  Repro repro;
  std::string err;
  EXPECT_FALSE(Emit(SmallTrace(), ReproOptions(), &repro, &err));
  EXPECT_NE(err.find("op 1 (aten::mul.Tensor): argument 'other' is t2"), std::string::npos) << err;
  EXPECT_NE(err.find("--values inputs"), std::string::npos) << err;
}

TEST(PythonRepro, ARangeStartingAfterAnUnkeptOutputSaysWhereToStart) {
  ReproOptions options;
  options.first_op = options.last_op = 1;
  Repro repro;
  std::string err;
  EXPECT_FALSE(Emit(WithInputs(), options, &repro, &err));
  EXPECT_NE(err.find("made by op 0"), std::string::npos) << err;
  EXPECT_NE(err.find("--ops 0-1"), std::string::npos) << err;
}

TEST(PythonRepro, NamesFromTheTraceStayInsideTheirLiterals) {
  Trace trace = WithInputs();
  for (TensorInfo& t : trace.calls[0].tensors) t.name = "w'); import os; os.system('x')\n#";
  trace.meta.libtorch_version = "1.13\nimport os";
  Repro repro;
  std::string err;
  ASSERT_TRUE(Emit(trace, ReproOptions(), &repro, &err)) << err;
  std::istringstream lines(repro.program);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.rfind("import os; os.system", 0), 0u) << line;
    if (line.find("os.system") != std::string::npos) {
      EXPECT_NE(line.find("\\x27); import os"), std::string::npos) << "the quote was not escaped: " << line;
    }
  }
  EXPECT_EQ(repro.program.find("\nimport os\n#"), std::string::npos);
}

TEST(PythonRepro, OperatorAndDtypeNamesMustBeWhatTorchCalls) {
  Trace bad_op = WithInputs();
  bad_op.calls[0].ops[0].name = "aten::expand; import os";
  Repro repro;
  std::string err;
  EXPECT_FALSE(Emit(bad_op, ReproOptions(), &repro, &err));
  EXPECT_NE(err.find("not an operator name"), std::string::npos) << err;

  Trace bad_dtype = WithInputs();
  bad_dtype.calls[0].tensors[2].dtype = "float32); import os; (";
  EXPECT_FALSE(Emit(bad_dtype, ReproOptions(), &repro, &err));
  EXPECT_NE(err.find("cannot make"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
