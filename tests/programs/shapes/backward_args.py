"""backward(inputs=...) (gradients only for some leaves), a non-scalar
backward(grad), backward with several roots, and torch.autograd.grad with
only_inputs."""
# calls: 4
import torch

torch.manual_seed(0)
w1 = torch.randn(4, 3, requires_grad=True)
w2 = torch.randn(3, 2, requires_grad=True)
x = torch.randn(5, 4)
out = (x @ w1).tanh() @ w2
out.sum().backward(inputs=[w2])
assert w1.grad is None
out = (x @ w1).tanh() @ w2
out.backward(torch.ones_like(out) * 0.5)
a = (x @ w1).sum()
b = (w2 * w2).sum()
torch.autograd.backward([a, b], [torch.tensor(2.0), torch.tensor(-1.0)])
(gw,) = torch.autograd.grad(((x @ w1) ** 2).sum(), [w1])
print("grad", float(w1.grad.sum()), float(w2.grad.sum()), float(gw.sum()))
