"""Fixtures for engine/ops/loss.h: cross_entropy with class-index targets, label smoothing and
every reduction, with the gradient of the logits; mse_loss with every reduction."""
import torch

from common import randn, save

t = {}
F = torch.nn.functional

logits = randn(6, 5, seed=1)
target = torch.tensor([0, 4, 2, 2, 1, 3], dtype=torch.int64)
t["ce.logits"] = logits
t["ce.target"] = target
for s in (0.0, 0.1, 0.3):
    for red in ("mean", "sum", "none"):
        t[f"ce.s{s}.{red}"] = F.cross_entropy(logits, target, label_smoothing=s, reduction=red)

# The test transposes this [5, 6] tensor into non-contiguous [6, 5] logits.
lt = randn(5, 6, seed=2)
t["ce_t.logits"] = lt
t["ce_t.s0.2.mean"] = F.cross_entropy(lt.t(), target, label_smoothing=0.2)

# One unbatched sample: logits [C], target [].
t["ce1.logits"] = logits[1]
t["ce1.target"] = target[1]
t["ce1.s0.1.mean"] = F.cross_entropy(logits[1], target[1], label_smoothing=0.1)
t["ce1.s0.1.none"] = F.cross_entropy(logits[1], target[1], label_smoothing=0.1, reduction="none")

# Gradients of the logits: mean with smoothing (seed 1), and none weighted by w.
x = logits.clone().requires_grad_()
F.cross_entropy(x, target, label_smoothing=0.1).backward()
t["ce.grad.s0.1.mean"] = x.grad.clone()
x.grad = None
w = randn(6, seed=3)
t["ce.grad.w"] = w
(F.cross_entropy(x, target, label_smoothing=0.25, reduction="none") * w).sum().backward()
t["ce.grad.s0.25.none"] = x.grad.clone()
x.grad = None
F.cross_entropy(x, target, reduction="sum").backward()
t["ce.grad.s0.0.sum"] = x.grad.clone()

a, b = randn(3, 4, seed=4), randn(3, 4, seed=5)
t["mse.input"] = a
t["mse.target"] = b
for red in ("mean", "sum", "none"):
    t[f"mse.{red}"] = F.mse_loss(a, b, reduction=red)

save("ops_loss", t)
