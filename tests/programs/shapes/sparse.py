"""Sparse gradients: nn.Embedding(sparse=True) accumulates a sparse COO
gradient (a tensor with no storage of its own), twice, so the second call
adds to a sparse .grad."""
# calls: 2
import torch

torch.manual_seed(0)
emb = torch.nn.Embedding(10, 3, sparse=True)
lin = torch.nn.Linear(3, 1)
for step in range(2):
    idx = torch.tensor([[1, 2, 4], [4, 3, 8]]) + step
    lin(emb(idx)).sum().backward()
print("grad", float(emb.weight.grad.coalesce().values().sum()))
