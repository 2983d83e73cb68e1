"""Fixtures for engine/ops/reduce.h: sum, mean, amax, amin, var and argmax over various dims,
with and without keepdim, on a contiguous and a permuted input, plus odd and long sizes."""
import torch

from common import randn, save

t = {}
x = randn(3, 4, 5, seed=1)
xp = randn(5, 3, 4, seed=2)  # the test reduces xp.permute(1, 2, 0): a [3, 4, 5] view
t["x"], t["xp"] = x, xp
inputs = {"x": x, "p": xp.permute(1, 2, 0)}

dim_sets = {"all": (), "d0": (0,), "d1": (1,), "d2": (2,), "dm1": (-1,), "d02": (0, 2),
            "d12": (1, 2), "d01": (0, 1), "d012": (0, 1, 2)}
for src, v in inputs.items():
    for dname, dims in dim_sets.items():
        for keep in (False, True):
            k = f"{src}.{dname}.{'keep' if keep else 'drop'}"
            d = dims if dims else None
            if d is None:  # over everything; keepdim keeps every dim as 1
                t[f"{k}.sum"] = v.sum(dim=tuple(range(v.dim())), keepdim=keep)
                t[f"{k}.mean"] = v.mean(dim=tuple(range(v.dim())), keepdim=keep)
                t[f"{k}.max"] = v.amax(dim=tuple(range(v.dim())), keepdim=keep)
                t[f"{k}.min"] = v.amin(dim=tuple(range(v.dim())), keepdim=keep)
                t[f"{k}.var"] = v.var(dim=tuple(range(v.dim())), keepdim=keep)
                t[f"{k}.var0"] = v.var(dim=tuple(range(v.dim())), correction=0, keepdim=keep)
                continue
            t[f"{k}.sum"] = v.sum(dim=d, keepdim=keep)
            t[f"{k}.mean"] = v.mean(dim=d, keepdim=keep)
            t[f"{k}.max"] = v.amax(dim=d, keepdim=keep)
            t[f"{k}.min"] = v.amin(dim=d, keepdim=keep)
            t[f"{k}.var"] = v.var(dim=d, keepdim=keep)
            t[f"{k}.var0"] = v.var(dim=d, correction=0, keepdim=keep)
    for dim in (0, 1, 2, -1):
        for keep in (False, True):
            t[f"{src}.argmax{dim}.{'keep' if keep else 'drop'}"] = v.argmax(dim=dim, keepdim=keep)

# Odd sizes (the kernel's 8-wide inner loop has a tail) and a long row (accumulation error).
odd = randn(7, 33, seed=3)
t["odd.x"], t["odd.sum1"], t["odd.sum0"], t["odd.mean1"] = odd, odd.sum(1), odd.sum(0), odd.mean(1)
t["odd.var1"] = odd.var(1)
long = randn(2, 5000, seed=4) + 3.0
t["long.x"], t["long.sum"], t["long.var"] = long, long.sum(1), long.var(1)
t["long.sum_f64"] = long.double().sum(1)

# Ties: argmax takes the first; amax shares the gradient evenly among tied elements.
ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 4.0, 5.0]],
                    requires_grad=True)
w = randn(3, seed=5)
(ties.amax(1) * w).sum().backward()
t["ties.x"], t["ties.w"], t["ties.argmax"], t["ties.max_grad"] = ties, w, ties.argmax(1), ties.grad
ties.grad = None
(ties.amin(1) * w).sum().backward()
t["ties.min_grad"] = ties.grad
# NaN is the extreme for amax/amin/argmax, as in PyTorch.
nan = torch.tensor([[1.0, float("nan"), 3.0], [4.0, 2.0, float("nan")]])
t["nan.x"], t["nan.max"], t["nan.min"], t["nan.argmax"] = nan, nan.amax(1), nan.amin(1), nan.argmax(1)

save("ops_reduce", t)
