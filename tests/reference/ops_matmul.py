"""Fixtures for engine/ops/linalg.h: matmul over every rank combination torch.matmul accepts
(1-D, 2-D, batched with broadcast batch dims), transposed operands, odd and blocked sizes,
and linear with and without bias (gradients included)."""
import torch
import torch.nn.functional as F

from common import randn, save

t = {}
cases = {  # name: (shape of a, shape of b)
    "dot": ((7,), (7,)),
    "vec_mat": ((5,), (5, 3)),
    "mat_vec": ((4, 5), (5,)),
    "mat_mat": ((7, 13), (13, 5)),
    "big": ((65, 70), (70, 67)),
    "batch_mat": ((2, 3, 4, 5), (5, 6)),
    "mat_batch": ((4, 5), (3, 5, 2)),
    "bcast": ((2, 1, 4, 5), (3, 5, 6)),
    "vec_batch": ((5,), (2, 5, 3)),
    "batch_vec": ((2, 3, 5), (5,)),
    "one": ((1, 1), (1, 1)),
}
for i, (name, (sa, sb)) in enumerate(cases.items()):
    a, b = randn(*sa, seed=2 * i + 1), randn(*sb, seed=2 * i + 2)
    t[f"{name}.a"], t[f"{name}.b"], t[f"{name}.out"] = a, b, torch.matmul(a, b)

# Transposed views: the test passes at.t() / bt.t() (and batched transposes of the last dims).
at, bt = randn(13, 7, seed=40), randn(5, 13, seed=41)
t.update({"trans.at": at, "trans.bt": bt, "trans.tn": at.t() @ randn(13, 5, seed=42),
          "trans.b": randn(13, 5, seed=42), "trans.a": randn(7, 13, seed=43)})
t["trans.nt"] = t["trans.a"] @ bt.t()
t["trans.tt"] = at.t() @ bt.t()
bat, bbt = randn(3, 5, 4, seed=44), randn(3, 6, 5, seed=45)
t.update({"btrans.at": bat, "btrans.bt": bbt,
          "btrans.out": bat.transpose(-1, -2) @ bbt.transpose(-1, -2)})

# linear: x [2, 3, 5], W [4, 5], b [4]; gradients of sum(out * w).
x, W, bias = (randn(2, 3, 5, seed=50).requires_grad_(), randn(4, 5, seed=51).requires_grad_(),
              randn(4, seed=52).requires_grad_())
w = randn(2, 3, 4, seed=53)
out = F.linear(x, W, bias)
(out * w).sum().backward()
t.update({"linear.x": x, "linear.W": W, "linear.bias": bias, "linear.w": w, "linear.out": out,
          "linear.grad_x": x.grad, "linear.grad_W": W.grad, "linear.grad_bias": bias.grad,
          "linear.out_nobias": F.linear(x, W)})
t["linear.vec_out"] = F.linear(x[0, 0], W, bias)

save("ops_matmul", t)
