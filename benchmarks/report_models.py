"""Models for benchmarks/report_scale.sh: one training step of a model
whose backward graph is large, for `cautograd record` to record.
Usage: python report_models.py densenet121 | transformer LAYERS"""
import sys

import torch

torch.manual_seed(0)
name = sys.argv[1]
if name == "densenet121":
    import torchvision

    model = torchvision.models.densenet121(weights=None)
    x = torch.randn(1, 3, 64, 64)
    loss = model(x).sum()
elif name == "transformer":
    layers = int(sys.argv[2])
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=2, dim_feedforward=64, batch_first=True, dropout=0.0)
    # enable_nested_tensor=False: the plain per-layer ops, as training runs them.
    model = torch.nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
    x = torch.randn(2, 8, 32)
    loss = model(x).pow(2).mean()
else:
    sys.exit(f"unknown model {name!r}: use densenet121 or transformer LAYERS")
loss.backward()
