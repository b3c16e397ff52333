"""In-place ops through views of non-leaf tensors: the engine runs the view's
own backward node inside CopySlices (it is no edge of the graph), and
AsStridedBackward where a view cannot be replayed by its view function."""
# calls: 4
import torch

torch.manual_seed(0)
x = torch.randn(4, 5, requires_grad=True)
w = torch.randn(5, 5, requires_grad=True)

# a = x * 2; a[0].mul_(3): the example from the bug report.
a = x * 2
a[0].mul_(3)
a.sum().backward()

# In-place activation and an in-place edit of a slice inside a block.
h = x @ w
h[:, 1:3].add_(h[:, 3:5] * 1)
h[1].mul_(0.5)
torch.relu_(h)
(h * h).mean().backward()

# A chain of views, edited in place: transpose, then narrow, then unsqueeze.
b = x.exp() + 0
b.t()[1:3].unsqueeze(0).mul_(2)
b.diagonal().sub_(1)
b.sum().backward()

# An in-place op on an as_strided view.
c = x * 1
c.as_strided((2, 2), (1, 5), 1).mul_(4)
c.pow(2).sum().backward()
print("grad", float(x.grad.sum()), float(w.grad.sum()))
