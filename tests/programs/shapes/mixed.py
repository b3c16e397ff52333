"""Three backward calls, of which the second goes through a nested tensor
(torch.nested), which a trace cannot describe: the recorder must leave that
call out, name it, and record the first and the third."""
import torch

torch.manual_seed(0)
w = torch.randn(3, 3, requires_grad=True)
x = torch.randn(4, 3)
(x @ w).pow(2).sum().backward()

a = torch.randn(2, 3, requires_grad=True)
b = torch.randn(4, 3, requires_grad=True)
nested = torch.nested.as_nested_tensor([a, b]) * 2
torch.nested.to_padded_tensor(nested, 0.0).sum().backward()

(x @ w).tanh().sum().backward()
print("grad", float(w.grad.sum()), float(a.grad.sum()))
