"""An autocast region (bfloat16 on the CPU): backward runs through casts the
autocast dispatch key inserted."""
# calls: 2
import torch

torch.manual_seed(0)
lin = torch.nn.Linear(8, 4)
x = torch.randn(6, 8, requires_grad=True)
for _ in range(2):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        loss = h.float().pow(2).mean()
    loss.backward()
print("grad", float(x.grad.sum()), float(lin.weight.grad.sum()))
