"""Fixtures for bf16 matmul and linear on the CPU (engine/ops/linalg_bf16.cpp): torch's own bf16
products (f32 accumulation, one rounding to bf16), with odd sizes, broadcast batch dims, a 1-D
operand, transposed operands and linear with and without bias."""
import torch
import torch.nn.functional as F

from common import randn, save

bf = torch.bfloat16
t = {}
cases = {  # name: (shape of a, shape of b)
    "mat_mat": ((37, 70), (70, 45)),
    "batch_mat": ((3, 17, 40), (40, 29)),
    "bcast": ((2, 1, 9, 33), (4, 33, 12)),
    "vec_mat": ((70,), (70, 45)),
    "deep": ((5, 600), (600, 7)),
}
for i, (name, (sa, sb)) in enumerate(cases.items()):
    a, b = randn(*sa, seed=2 * i + 1, dtype=bf), randn(*sb, seed=2 * i + 2, dtype=bf)
    t[f"{name}.a"], t[f"{name}.b"], t[f"{name}.out"] = a, b, torch.matmul(a, b)

# Transposed operands: the test passes at.t() and bt.t().
at, bt = randn(70, 37, seed=40, dtype=bf), randn(45, 70, seed=41, dtype=bf)
t.update({"trans.at": at, "trans.bt": bt, "trans.out": at.t() @ bt.t()})

# linear: x [2, 13, 70], W [45, 70], b [45].
x, W, b = randn(2, 13, 70, seed=50, dtype=bf), randn(45, 70, seed=51, dtype=bf), randn(45, seed=52, dtype=bf)
t.update({"linear.x": x, "linear.w": W, "linear.b": b, "linear.out": F.linear(x, W, b),
          "linear.out_nobias": F.linear(x, W)})

save("ops_matmul_bf16", t)
