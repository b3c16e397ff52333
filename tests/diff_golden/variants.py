"""One small training step, and variants of it that each differ from it in
one known way, for `cautograd diff`'s golden tests (tests/diff_golden/).
Recorded by tests/diff_golden/regenerate.sh with
`cautograd record --values all -- /usr/bin/python3 variants.py [FLAG]`.

Every input row is the same row, so the gradients do not depend on the batch
size, and the extra layer starts as the identity after a ReLU, so it changes
no value: each variant differs from the base only where it means to.

--batch N       rows in the batch (default 2)
--extra-layer   a Linear + ReLU inserted between the two layers
--hook          a tensor hook on the hidden activation (it multiplies by 1)
--float64       the model and data in float64
"""
import argparse

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--extra-layer", action="store_true")
    parser.add_argument("--hook", action="store_true")
    parser.add_argument("--float64", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    first = torch.nn.Linear(8, 16)
    last = torch.nn.Linear(16, 4)
    row = torch.randn(1, 8)
    target_row = torch.randn(1, 4)
    layers = [first, torch.nn.ReLU()]
    if args.extra_layer:
        extra = torch.nn.Linear(16, 16)
        with torch.no_grad():
            extra.weight.copy_(torch.eye(16))
            extra.bias.zero_()
        layers += [extra, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    dtype = torch.float64 if args.float64 else torch.float32
    model.to(dtype)
    last.to(dtype)

    x = row.expand(args.batch, 8).to(dtype).contiguous()
    y = target_row.expand(args.batch, 4).to(dtype).contiguous()
    hidden = model(x)
    if args.hook:
        hidden.register_hook(lambda grad: grad * 1)
    loss = torch.nn.functional.mse_loss(last(hidden), y)
    loss.backward()
    print("loss %.6f" % float(loss))


if __name__ == "__main__":
    main()
