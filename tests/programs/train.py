"""A small training script that `cautograd record -- /usr/bin/python3 train.py`
records in the end-to-end tests. It is an ordinary PyTorch program: nothing in
it knows about cautograd. It exercises what Python users hit: a Python custom
autograd.Function with a saved tensor and a saved scalar, a tensor hook that
changes a gradient, a tensor hook on a parameter, a node pre-hook and a
post-accumulate-grad hook (PyTorch 2.x), retain_grad, zero_grad,
torch.autograd.grad with create_graph (a gradient penalty), and backward
calls on two threads.

--steps N      training steps (default 2)
--time         print the mean step time in ms (for the overhead benchmark)
--crash-after  kill the process with SIGSEGV after that many steps
"""
import argparse
import os
import signal
import threading
import time

import torch


class Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return x * alpha

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.alpha + 0 * x, None


def note_grads(grad_inputs, grad_outputs):
    # A node post hook that only looks: the trace names it __main__.note_grads.
    return None


def leaf_hook(grad):
    # A tensor hook on a parameter (a leaf): it lives on AccumulateGrad.
    return None


def node_prehook(grad_outputs):
    # Node.register_prehook (PyTorch 2.x).
    return None


def after_accumulate(param):
    # Tensor.register_post_accumulate_grad_hook (PyTorch 2.x).
    return None


def step(model, optimizer, batch):
    x = torch.randn(batch, 8)
    y = torch.randn(batch, 4)
    h = model[0](x)
    h.register_hook(lambda g: g * 0.5)
    h.retain_grad()
    out = model[2](Scale.apply(model[1](h), 2.0))
    out.grad_fn.register_hook(note_grads)
    if hasattr(out.grad_fn, "register_prehook"):
        out.grad_fn.register_prehook(node_prehook)
    loss = torch.nn.functional.mse_loss(out, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)


def threaded_backward():
    # Two graphs, backpropagated at the same time from two threads.
    def work(seed, out):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(32, 32, generator=g, requires_grad=True)
        x = torch.randn(16, 32, generator=g)
        (x @ w).tanh().sum().backward()
        out.append(w.grad.sum().item())

    results = []
    threads = [threading.Thread(target=work, args=(s, results)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--crash-after", type=int, default=-1)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model[0].bias.register_hook(leaf_hook)
    if hasattr(torch.Tensor, "register_post_accumulate_grad_hook"):
        model[2].weight.register_post_accumulate_grad_hook(after_accumulate)
    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(model, optimizer, args.batch)
        if i + 1 == args.crash_after:
            os.kill(os.getpid(), signal.SIGSEGV)
    elapsed = time.perf_counter() - start
    if args.time:
        print("step_ms %.4f" % (1000 * elapsed / args.steps))
        return

    x = torch.randn(4, 8, requires_grad=True)
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    print("threads", ["%.4f" % r for r in threaded_backward()])
    print("loss %.6f" % loss)


if __name__ == "__main__":
    main()
