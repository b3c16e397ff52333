"""The performance anchor: real compiled autograd beside eager backward, and
cautograd's compiled program beside eager backward, on the built-in mlp
(16 -> 32 -> 32 -> 4, ReLU, MSE loss, batch 8 unless --batch).

  python benchmarks/ca_anchor.py CAUTOGRAD [--torch VERSION] [--iters N] [--batch B]

PYTHON must be the torch of backend VERSION (a pip venv). In this one Python
process it times backward() of the same model on the same inputs three ways:
eager, under compiled autograd with the graph as it is ("ca_eager"), and
under compiled autograd with inductor, each after warm-up, on cache hits.
Then `cautograd bench --model mlp` times, in its own process on the same
model, eager backward against cautograd's compiled program
(`recompile --emit`, run op by op). Compare the ratios, each to the eager
backward of its own process: the processes differ (Python's engine and
hooks vs C++), so absolute times are not comparable across them.
"""
import argparse
import json
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def model_and_inputs(batch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    return net, torch.randn(batch, 16), torch.randn(batch, 4)


def time_backward(net, x, target, iters, warmup, wrap):
    times = []
    for i in range(warmup + iters):
        net.zero_grad()
        loss = F.mse_loss(net(x), target)
        with wrap():
            t0 = time.perf_counter()
            loss.backward()
            t1 = time.perf_counter()
        if i >= warmup:
            times.append((t1 - t0) * 1e6)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cautograd")
    p.add_argument("--torch", default=None)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    from contextlib import nullcontext

    from torch._dynamo import compiled_autograd

    net, x, target = model_and_inputs(args.batch)
    eager = time_backward(net, x, target, args.iters, 20, nullcontext)
    ca_eager = time_backward(net, x, target, args.iters, 20,
                             lambda: compiled_autograd._enable(lambda gm: gm, dynamic=False))
    inductor = torch.compile
    ca_inductor = time_backward(
        net, x, target, args.iters, 20,
        lambda: compiled_autograd._enable(lambda gm: inductor(gm, backend="inductor", fullgraph=True),
                                          dynamic=False))

    cmd = [args.cautograd, "bench", "--model", "mlp", "--json", "--iters", str(args.iters), "--batch", str(args.batch)]
    if args.torch:
        cmd += ["--torch", args.torch]
    bench = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["timings"]

    print("torch %s, mlp batch %d, one thread, median of %d backward calls" %
          (torch.__version__, args.batch, args.iters))
    print("python process:")
    print("  eager backward                         %8.1f us  1.00x" % eager)
    print("  compiled autograd, ca_eager (hits)     %8.1f us  %.2fx" % (ca_eager, ca_eager / eager))
    print("  compiled autograd, inductor (hits)     %8.1f us  %.2fx" % (ca_inductor, ca_inductor / eager))
    e = bench["eager backward"]["median_us"]
    print("cautograd bench process (C++):")
    print("  eager backward                         %8.1f us  1.00x" % e)
    for row in ("compiled", "kernels (floor)"):
        print("  %-38s %8.1f us  %.2fx" % ("cautograd " + row, bench[row]["median_us"], bench[row]["median_us"] / e))


if __name__ == "__main__":
    main()
