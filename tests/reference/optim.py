"""Fixtures for tests/engine/test_optim.cpp: 20 steps of SGD, Adam and AdamW on a small MLP from
fixed initial weights and fixed batches (loss at every step and every parameter after step 20),
clip_grad_norm_, and learning-rate schedules."""
import math

import torch
import torch.nn.functional as F

from common import randn, save

STEPS = 20
BATCH, IN, HIDDEN, OUT = 8, 6, 16, 4


def initial_weights():
    return {
        "fc1.weight": randn(HIDDEN, IN, seed=1) * 0.4,
        "fc1.bias": randn(HIDDEN, seed=2) * 0.1,
        "fc2.weight": randn(OUT, HIDDEN, seed=3) * 0.3,
        "fc2.bias": randn(OUT, seed=4) * 0.1,
    }


def forward(p, x):
    h = torch.tanh(F.linear(x, p["fc1.weight"], p["fc1.bias"]))
    return F.linear(h, p["fc2.weight"], p["fc2.bias"])


# name -> (optimizer class, options, grouped): grouped puts weights and biases in two groups.
CONFIGS = {
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), False),
    "sgd_dampening": (torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2), False),
    "sgd_plain": (torch.optim.SGD, dict(lr=0.1), False),
    "adam": (torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-3), False),
    "adam_amsgrad": (torch.optim.Adam, dict(lr=1e-2, amsgrad=True), False),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1), False),
    "adamw_groups": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1), True),
}


def run(name, cls, opts, grouped, batches):
    p = {k: v.clone().requires_grad_(True) for k, v in initial_weights().items()}
    if grouped:  # biases: half the rate and no decay
        params = [
            {"params": [p["fc1.weight"], p["fc2.weight"]]},
            {"params": [p["fc1.bias"], p["fc2.bias"]], "lr": opts["lr"] / 2, "weight_decay": 0.0},
        ]
    else:
        params = list(p.values())
    opt = cls(params, foreach=False, **opts)
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = F.mse_loss(forward(p, x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = {f"{name}.losses": torch.tensor(losses, dtype=torch.float64)}
    out.update({f"{name}.{k}": v.detach() for k, v in p.items()})
    return out


def clip_cases():
    out = {}
    grads = [randn(3, 4, seed=20), randn(5, seed=21) * 2, randn(2, 2, 2, seed=22) * 0.5]
    for i, g in enumerate(grads):
        out[f"clip.grad{i}"] = g
    for tag, max_norm, norm_type in [("l2", 1.0, 2.0), ("l1", 2.0, 1.0), ("inf", 0.5, math.inf),
                                     ("l3", 1.5, 3.0), ("noclip", 100.0, 2.0)]:
        ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p_, g in zip(ps, grads):
            p_.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type, foreach=False)
        out[f"clip.{tag}.total"] = total.reshape(1).double()
        for i, p_ in enumerate(ps):
            out[f"clip.{tag}.grad{i}"] = p_.grad
    return out


def lrs(make_sched, steps, base=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = make_sched(opt)
    values = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        values.append(opt.param_groups[0]["lr"])
    return torch.tensor(values, dtype=torch.float64)


def warmup_cosine(warmup, total, min_lr, base):
    def factor(step):
        if step < warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / (total - warmup))
        return (min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))) / base
    return factor


def schedule_cases():
    lam = torch.optim.lr_scheduler.LambdaLR
    return {
        "sched.cosine": lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=1e-3), 20),
        "sched.warmup_cosine": lrs(lambda o: lam(o, warmup_cosine(5, 20, 1e-3, 0.1)), 25),
        "sched.step": lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 12),
    }


def main():
    batches = [(randn(BATCH, IN, seed=100 + i), randn(BATCH, OUT, seed=200 + i)) for i in range(STEPS)]
    out = {f"init.{k}": v for k, v in initial_weights().items()}
    out["data.x"] = torch.stack([x for x, _ in batches])
    out["data.y"] = torch.stack([y for _, y in batches])
    for name, (cls, opts, grouped) in CONFIGS.items():
        out.update(run(name, cls, opts, grouped, batches))
    out.update(clip_cases())
    out.update(schedule_cases())
    save("optim", out)


if __name__ == "__main__":
    main()
