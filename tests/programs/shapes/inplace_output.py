"""In-place ops on the outputs of differentiable ops (history rebased onto
the in-place node), on a leaf's clone, and in-place ops whose input the
backward needs (saved before the edit, checked by the version counter)."""
# calls: 2
import torch

torch.manual_seed(0)
x = torch.randn(3, 4, requires_grad=True)
y = x.sin()
y.add_(1)
y.mul_(x)
z = y.sigmoid() + 0
z.sub_(0.5).mul_(2).exp_()
z.sum().backward()

c = x.clone()
c.clamp_(-0.5, 0.5)
c.masked_fill_(c > 0.4, 0.0)
(c * 3).sum().backward()
print("grad", float(x.grad.sum()))
