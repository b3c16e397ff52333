"""Custom autograd Functions that use mark_dirty (an in-place forward),
mark_non_differentiable (an index output) and set_materialize_grads(False)
(undefined gradients reach backward as None)."""
# calls: 1
import torch


class AddOneInPlace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x.add_(1)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


class SortWithIndex(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        values, index = x.sort(dim=1)
        ctx.mark_non_differentiable(index)
        ctx.save_for_backward(index)
        return values, index

    @staticmethod
    def backward(ctx, grad_values, grad_index):
        (index,) = ctx.saved_tensors
        return torch.zeros_like(grad_values).scatter_(1, index, grad_values)


class TwoOutputs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g1, g2):
        total = None
        for g, k in ((g1, 2), (g2, 3)):
            if g is not None:
                total = g * k if total is None else total + g * k
        return total


torch.manual_seed(0)
x = torch.randn(3, 5, requires_grad=True)
a = AddOneInPlace.apply(x * 1)
values, index = SortWithIndex.apply(a)
first, _unused = TwoOutputs.apply(values)  # the second output gets no gradient
(first * index.float()).sum().backward()
print("grad", float(x.grad.sum()))
