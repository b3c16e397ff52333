"""A backward call that raises (a hook refuses a gradient) between calls
that complete: the engine runs no final callback for it, so the recorder
learns it ended when its graph task dies. The three calls that complete are
recorded; the one that raised is not a call of the trace (it did not
complete), and the next graph task, often at the same address, is a call
of its own."""
# calls: 3
import torch

w = torch.randn(3, requires_grad=True)
(w * 2).sum().backward()


def refuse(grad):
    raise RuntimeError("this hook refuses every gradient")


y = w * 3
y.register_hook(refuse)
try:
    y.sum().backward()
except RuntimeError as e:
    print("caught:", e)
(w * 4).sum().backward()
(w * 5).pow(2).sum().backward()
print("grad", float(w.grad.sum()))
