"""Runs one conformance scenario (scenarios.py).

  run.py real NAME OUT.json   every backward under real compiled autograd;
                              writes, per backward call, whether it compiled
                              (the delta of compiled autograd's "captures"
                              counter) and the lines its verbose log printed
  run.py eager NAME           the same steps in eager mode, for
                              `cautograd record -- python run.py eager NAME`

Both runs seed torch the same way, so they make the same graphs.
"""
import json
import logging
import sys

import torch

import scenarios


class Lines(logging.Handler):
    """Collects what compiled autograd's verbose log prints."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Cache miss due to"):
            self.lines.append(message)


def eager_backward(loss, inputs=None, create_graph=False):
    if inputs is None:
        loss.backward(create_graph=create_graph)
        return None
    return torch.autograd.grad(loss, inputs, create_graph=create_graph)


def make_compiler(name):
    if name == "eager":
        return lambda gm: gm
    return lambda gm: torch.compile(gm, backend=name, fullgraph=True, dynamic=True)


def run_real(fn, out_path):
    from torch._dynamo import compiled_autograd
    from torch._dynamo.utils import counters

    torch._logging.set_logs(compiled_autograd_verbose=True)
    lines = Lines()
    # Where compiled autograd's own verbose log goes (torch._logging's artifact logger).
    logging.getLogger("torch._dynamo.compiled_autograd.__compiled_autograd_verbose").addHandler(lines)
    compiler = make_compiler(fn.compiler)
    calls = []

    def backward(loss, inputs=None, create_graph=False):
        before = counters["compiled_autograd"]["captures"]
        lines.lines.clear()
        record = {}
        try:
            with compiled_autograd._enable(compiler, dynamic=fn.mode == "dynamic"):
                result = eager_backward(loss, inputs, create_graph)
        except Exception as e:  # compiled autograd refused the call: say so, go on in eager mode
            record["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
            result = eager_backward(loss, inputs, create_graph)
        record["compiled"] = counters["compiled_autograd"]["captures"] - before
        record["log"] = list(lines.lines)
        calls.append(record)
        return result

    fn(backward)
    with open(out_path, "w") as f:
        json.dump({"scenario": fn.__name__, "mode": fn.mode, "compiler": fn.compiler,
                   "torch": torch.__version__, "calls": calls}, f, indent=1)


def main():
    kind, name = sys.argv[1], sys.argv[2]
    fn = scenarios.SCENARIOS[name]
    torch.manual_seed(0)
    if kind == "real":
        run_real(fn, sys.argv[3])
    else:
        fn(eager_backward)


if __name__ == "__main__":
    main()
