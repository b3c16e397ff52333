"""Backward calls on several threads at once, each on its own graph."""
# calls: 12
import threading

import torch

torch.manual_seed(0)
weights = [torch.randn(16, 16, requires_grad=True) for _ in range(4)]
inputs = [torch.randn(8, 16) for _ in range(4)]
barrier = threading.Barrier(len(weights))


def work(i):
    barrier.wait()
    for _ in range(3):
        (inputs[i] @ weights[i]).relu().pow(2).sum().backward()


threads = [threading.Thread(target=work, args=(i,)) for i in range(len(weights))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("grad", sum(float(w.grad.sum()) for w in weights))
