"""A program that turns compiled autograd on for some of its backward calls,
for the end-to-end tests: cautograd must record the eager calls whole, the
compiled ones as their graph and compiled autograd's key, leave the
program's results alone, and `recompile` must print the lines compiled
autograd's own verbose log prints (TORCH_LOGS=compiled_autograd_verbose).
PyTorch 2.x.

Prints the gradient sums so a run with and without cautograd can be compared.
"""
import torch
from torch._dynamo import compiled_autograd


def main():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    sums = []
    for step in range(4):
        model.zero_grad()
        loss = model(torch.randn(4, 8)).pow(2).mean()
        if step == 3:
            # A new hook on a leaf: its AccumulateGrad gets another key.
            model[0].weight.register_hook(lambda g: g * 0.5)
        if step in (1, 2, 3):
            # The compiled graph as it is ("ca_eager"): no C++ compiler needed.
            with compiled_autograd._enable(lambda gm: gm):
                loss.backward()
        else:
            loss.backward()
        sums.append(sum(float(p.grad.sum()) for p in model.parameters()))
    print("grad sums", " ".join("%.6f" % s for s in sums))


if __name__ == "__main__":
    main()
