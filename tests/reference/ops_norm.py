"""Fixtures for engine/ops/norm.h: layer_norm over one and two trailing dims (with and without
weight and bias), batch_norm on [N, C], [N, C, L] and [N, C, H, W] through two training calls
(outputs and running statistics) and one in eval, and l2_normalize along several dims. Some
inputs are stored in another layout for the test to permute into non-contiguous views."""
import torch

from common import rand, randn, save

t = {}
F = torch.nn.functional

# ---- layer_norm
x = randn(4, 3, 8, seed=1) * 2 + 0.5
w8, b8 = randn(8, seed=2), randn(8, seed=3)
w38, b38 = randn(3, 8, seed=4), randn(3, 8, seed=5)
t.update({"ln.x": x, "ln.w8": w8, "ln.b8": b8, "ln.w38": w38, "ln.b38": b38})
t["ln.last.affine"] = F.layer_norm(x, (8,), w8, b8)
t["ln.last2.affine"] = F.layer_norm(x, (3, 8), w38, b38)
t["ln.last.plain.eps1e-3"] = F.layer_norm(x, (8,), eps=1e-3)
t["ln.last.weight_only"] = F.layer_norm(x, (8,), w8)
# The test permutes ln.x with (2, 1, 0) into a non-contiguous [8, 3, 4] before normalizing.
w4, b4 = randn(4, seed=6), randn(4, seed=7)
t.update({"ln.w4": w4, "ln.b4": b4})
t["ln.permuted.affine"] = F.layer_norm(x.permute(2, 1, 0), (4,), w4, b4)

# Gradients of sum(out * gw) with respect to x, weight and bias, in f64.
xd = x.double().requires_grad_()
wd, bd = w8.double().requires_grad_(), b8.double().requires_grad_()
gw = randn(4, 3, 8, seed=8, dtype=torch.float64)
(F.layer_norm(xd, (8,), wd, bd) * gw).sum().backward()
t.update({"ln.grad.w": gw, "ln.grad.x": xd.grad, "ln.grad.weight": wd.grad, "ln.grad.bias": bd.grad})

# ---- batch_norm: two training calls then eval, momentum 0.1 (and 0.3 for the 4-D case).
cases = {"bn2": (8, 3), "bn3": (4, 3, 5), "bn4": (2, 3, 4, 5)}
for i, (name, shape) in enumerate(cases.items()):
    momentum = 0.3 if name == "bn4" else 0.1
    xa = randn(*shape, seed=10 + i) * 1.5 + 0.7
    xb = randn(*shape, seed=20 + i) - 0.3
    weight, bias = randn(3, seed=30 + i), randn(3, seed=40 + i)
    rm, rv = randn(3, seed=50 + i), rand(3, seed=60 + i, low=0.5, high=2.0)
    t.update({f"{name}.xa": xa, f"{name}.xb": xb, f"{name}.weight": weight, f"{name}.bias": bias,
              f"{name}.rm0": rm, f"{name}.rv0": rv})
    rm, rv = rm.clone(), rv.clone()
    t[f"{name}.ya"] = F.batch_norm(xa, rm, rv, weight, bias, True, momentum)
    t[f"{name}.yb"] = F.batch_norm(xb, rm, rv, weight, bias, True, momentum)
    t[f"{name}.rm2"], t[f"{name}.rv2"] = rm.clone(), rv.clone()
    t[f"{name}.eval"] = F.batch_norm(xa, rm, rv, weight, bias, False, momentum)

# Channels-last storage: the test permutes bn_cl.x [2, 4, 5, 3] by (0, 3, 1, 2).
xcl = randn(2, 4, 5, 3, seed=70)
t["bn_cl.x"] = xcl
rm, rv = torch.zeros(3), torch.ones(3)
t["bn_cl.y"] = F.batch_norm(xcl.permute(0, 3, 1, 2), rm, rv, None, None, True, 0.1)
t["bn_cl.rm"], t["bn_cl.rv"] = rm, rv

# Training-mode gradients of sum(out * gw) on [N, C, L], in f64.
xd = randn(4, 3, 5, seed=80, dtype=torch.float64).requires_grad_()
wd = randn(3, seed=81, dtype=torch.float64).requires_grad_()
bd = randn(3, seed=82, dtype=torch.float64).requires_grad_()
gw = randn(4, 3, 5, seed=83, dtype=torch.float64)
(F.batch_norm(xd, None, None, wd, bd, True) * gw).sum().backward()
t.update({"bn.grad.x0": xd.detach(), "bn.grad.weight0": wd.detach(), "bn.grad.bias0": bd.detach(),
          "bn.grad.w": gw, "bn.grad.x": xd.grad, "bn.grad.weight": wd.grad, "bn.grad.bias": bd.grad})

# ---- l2_normalize; row 2 of l2.x is zero (the eps clamp keeps it zero).
x = randn(4, 6, seed=90)
x[2] = 0
t["l2.x"] = x
t["l2.d1"] = F.normalize(x, dim=1)
t["l2.d0"] = F.normalize(x, dim=0)
x3 = randn(2, 5, 3, seed=91)
t["l2.x3"] = x3
t["l2.x3.d1"] = F.normalize(x3, dim=1)
t["l2.x3.t.d2"] = F.normalize(x3.transpose(1, 2), dim=2)  # the test transposes too

save("ops_norm", t)
