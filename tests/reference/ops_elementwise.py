"""Fixtures for engine/ops/elementwise.h: binary ops with broadcasting (scalars and a transposed
operand included), comparisons, every unary op in f32 and f64, and the gradients PyTorch gives
where finite differences cannot judge (ties of maximum/minimum, pow at a zero base)."""
import torch
import torch.nn.functional as F

from common import rand, randn, save

t = {}

# ---- binary ops. Each case is (a, b); "tview" stores a transposed: the test passes a.t().
safe = lambda *s, seed: randn(*s, seed=seed).sign() * rand(*s, seed=seed + 1, low=0.5, high=2.0)
cases = {
    "same": (randn(3, 4, 5, seed=1), safe(3, 4, 5, seed=2)),
    "row": (randn(3, 4, 5, seed=3), safe(5, seed=4)),
    "col": (randn(3, 4, 5, seed=5), safe(4, 1, seed=6)),
    "both": (randn(4, 1, seed=7), safe(3, 1, 5, seed=8)),
    "scalar": (randn(3, 4, 5, seed=9), safe(1, seed=10).reshape(())),
    "tview": (randn(5, 4, seed=11), safe(3, 4, 5, seed=12)),
}
ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
       "maximum": torch.maximum, "minimum": torch.minimum}
for name, (a, b) in cases.items():
    t[f"{name}.a"], t[f"{name}.b"] = a, b
    ua = a.t() if name == "tview" else a
    for op, fn in ops.items():
        t[f"{name}.{op}"] = fn(ua, b)
    base = ua.abs() + 0.5  # pow needs a positive base for real results
    t[f"{name}.pow"] = torch.pow(base, b)

# ---- comparisons and maximum/minimum on a coarse grid, so that many elements tie.
qa = (randn(4, 6, seed=13) * 2).round() / 2
qb = (randn(6, seed=14) * 2).round() / 2
t["cmp.a"], t["cmp.b"] = qa, qb
for op in ("eq", "ne", "lt", "le", "gt", "ge"):
    t[f"cmp.{op}"] = getattr(torch, op)(qa, qb).float()
a, b = qa.clone().requires_grad_(), qb.expand(4, 6).clone().requires_grad_()
w = randn(4, 6, seed=15)
for op in ("maximum", "minimum"):
    a.grad = b.grad = None
    out = getattr(torch, op)(a, b)
    (out * w).sum().backward()
    t[f"cmp.{op}"], t[f"cmp.{op}_grad_a"], t[f"cmp.{op}_grad_b"] = out, a.grad, b.grad
t["cmp.w"] = w
nan = torch.tensor([1.0, float("nan"), 2.0, float("nan")])
other = torch.tensor([float("nan"), 1.0, 3.0, float("nan")])
t["nan.a"], t["nan.b"] = nan, other
t["nan.maximum"], t["nan.minimum"] = torch.maximum(nan, other), torch.minimum(nan, other)

# ---- scalar forms: tensor op number and number op tensor.
x = randn(3, 5, seed=16)
p = rand(3, 5, seed=17, low=0.2, high=3.0)
t["scal.x"], t["scal.p"] = x, p
t["scal.add"], t["scal.sub"], t["scal.rsub"] = x + 2.5, x - 2.5, 2.5 - x
t["scal.mul"], t["scal.div"], t["scal.rdiv"] = x * -1.5, x / 4.0, 2.5 / p
for e in (3.0, 0.5, -1.5, 2.0):
    t[f"scal.pow{e}"] = p ** e

# ---- pow at a zero base: PyTorch defines the gradients there as 0 (not NaN).
base = torch.tensor([0.0, 0.0, 0.0, 1.5, 2.0, 0.0], requires_grad=True)
expo = torch.tensor([2.0, 0.0, 1.0, 0.0, -1.0, 3.0], requires_grad=True)
w = randn(6, seed=18)
(torch.pow(base, expo) * w).sum().backward()
t.update({"pow0.base": base, "pow0.expo": expo, "pow0.w": w, "pow0.out": torch.pow(base, expo),
          "pow0.grad_base": base.grad, "pow0.grad_expo": expo.grad})
base2 = torch.tensor([0.0, 1.5, -2.0, 0.0], requires_grad=True)
(torch.pow(base2, 0.0) * w[:4]).sum().backward()
t.update({"pow0.base2": base2, "pow0.grad_base2_e0": base2.grad})

# ---- unary ops, f32 and f64, over a range that crosses every branch (softplus's threshold
# included); positive inputs for log/sqrt/rsqrt.
special = [-30.0, -20.5, -10.0, -5.0, -2.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.49, 2.5, 2.51,
           5.0, 10.0, 19.99, 20.0, 20.01, 25.0, 30.0]
xu = torch.cat([torch.tensor(special, dtype=torch.float64), randn(42, seed=19, dtype=torch.float64) * 3])
xp = torch.cat([torch.tensor([1e-6, 1.0, 100.0], dtype=torch.float64),
                rand(29, seed=20, low=0.01, high=10.0, dtype=torch.float64)])
unary = {
    "neg": lambda v: -v, "exp": torch.exp, "abs": torch.abs, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "gelu": F.gelu,
    "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
    "quick_gelu": lambda v: v * torch.sigmoid(1.702 * v),
    "elu": F.elu, "elu_a05": lambda v: F.elu(v, alpha=0.5),
    "softplus": F.softplus, "softplus_b2_t5": lambda v: F.softplus(v, beta=2.0, threshold=5.0),
}
positive = {"log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt}
for dt, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
    t[f"unary.x_{tag}"], t[f"unary.xp_{tag}"] = xu.to(dt), xp.to(dt)
    for name, fn in unary.items():
        t[f"unary.{name}_{tag}"] = fn(xu.to(dt))
    for name, fn in positive.items():
        t[f"unary.{name}_{tag}"] = fn(xp.to(dt))
# bf16 in and out (computed in f32, rounded once).
for name in ("gelu", "tanh", "softplus", "quick_gelu"):
    t[f"unary.{name}_bf16"] = unary[name](xu.to(torch.bfloat16))
# Infinities and NaN pass through as PyTorch passes them (not gelu: PyTorch gives NaN for
# gelu(inf), an artifact of its vectorized x * 0.5 * (1 + erf), where the engine gives inf).
inf = torch.tensor([float("inf"), float("-inf"), float("nan"), 0.0])
t["unary.inf"] = inf
for name in ("neg", "exp", "abs", "tanh", "sigmoid", "relu", "elu", "softplus"):
    t[f"unary.{name}_inf"] = unary[name](inf)

save("ops_elementwise", t)
