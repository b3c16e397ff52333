"""torch.utils.checkpoint, reentrant and not: the forward is run again inside
backward; the reentrant kind runs a backward of its own inside the outer one."""
# calls: 3
import torch
from torch.utils.checkpoint import checkpoint

torch.manual_seed(0)
lin1 = torch.nn.Linear(6, 6)
lin2 = torch.nn.Linear(6, 2)


def block(t):
    return torch.tanh(lin1(t)) * 2


x = torch.randn(4, 6, requires_grad=True)
for reentrant in (True, False):
    h = checkpoint(block, x, use_reentrant=reentrant)
    lin2(h).pow(2).sum().backward()
print("grad", float(x.grad.sum()), float(lin1.weight.grad.sum()))
