"""A program that turns compiled autograd on for some of its backward calls,
for the end-to-end tests: cautograd must name each call it cannot record,
record the eager ones, and leave the program's results alone. PyTorch 2.x.

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
        if step in (1, 2):
            # The compiled graph as it is ("ca_eager"): no C++ compiler needed.
            with compiled_autograd._enable(lambda gm: gm):
                loss.backward()
        else:
            loss.backward()
        sums.append(sum(float(p.grad.sum()) for p in model.parameters()))
    print("grad sums", " ".join("%.6f" % s for s in sums))


if __name__ == "__main__":
    main()
