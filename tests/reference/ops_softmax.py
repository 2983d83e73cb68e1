"""Fixtures for engine/ops/softmax.h: softmax and log_softmax along every dim, on transposed
(non-contiguous) inputs, on large values that overflow without the max shift, and the
gradients PyTorch gives for sum(out * w)."""
import torch

from common import randn, save

t = {}
F = torch.nn.functional

# Every dim of a 3-D tensor with odd sizes.
x = randn(3, 5, 7, seed=1)
t["x"] = x
for d in range(3):
    t[f"softmax.d{d}"] = F.softmax(x, d)
    t[f"log_softmax.d{d}"] = F.log_softmax(x, d)

# The test transposes x to [7, 5, 3] (non-contiguous) before the op.
xt = x.transpose(0, 2)
for d in (0, 1, 2):
    t[f"transposed.softmax.d{d}"] = F.softmax(xt, d)
    t[f"transposed.log_softmax.d{d}"] = F.log_softmax(xt, d)

# exp() of these overflows in f32 unless the row max is subtracted first.
big = randn(4, 33, seed=2) * 40 + 1000
t["big"] = big
t["big.softmax"] = F.softmax(big, -1)
t["big.log_softmax"] = F.log_softmax(big, -1)
t["big_neg.log_softmax"] = F.log_softmax(-big, -1)

# Gradients of sum(out * w) along the middle dim.
g = randn(4, 6, 5, seed=3, dtype=torch.float64).requires_grad_()
w = randn(4, 6, 5, seed=4, dtype=torch.float64)
t["grad.x"] = g
t["grad.w"] = w
for fn in ("softmax", "log_softmax"):
    g.grad = None
    (getattr(F, fn)(g, 1) * w).sum().backward()
    t[f"grad.{fn}"] = g.grad.clone()

save("ops_softmax", t)
