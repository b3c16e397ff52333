"""torch.no_grad islands and detach_ inside a differentiable computation:
tensors that enter the graph as constants, and a leaf updated in place under
no_grad between two backward calls (an optimizer step)."""
# calls: 2
import torch

torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)
x = torch.randn(3, 4)
h = x @ w
with torch.no_grad():
    scale = h.abs().max()
d = h.clone()
d.detach_()
out = (h / scale + d).sum() + (h * h).sum()
out.backward()
with torch.no_grad():
    w -= 0.1 * w.grad
w.grad = None
(x @ w).relu().sum().backward()
print("grad", float(w.grad.sum()))
