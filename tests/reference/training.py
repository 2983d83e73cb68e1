"""Fixtures for tests/engine/test_training.cpp: two small models trained from fixed initial
weights on fixed synthetic data, with the loss at every step.

mlp:  8 -> 32 -> ReLU -> 3 on a 3-class problem labelled by a random linear teacher; Adam.
conv: Conv2d(1, 4, 3, pad 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(64, 2)
      on 8x8 images holding a horizontal (class 0) or vertical (class 1) bar plus noise; SGD with
      momentum. Also the eval-mode loss after training and the batch norm running statistics."""
import torch
import torch.nn.functional as F

from common import randn, rand, save

MLP_STEPS, MLP_BATCH = 40, 32
CONV_STEPS, CONV_BATCH = 30, 16


def mlp_case():
    x = randn(256, 8, seed=1)
    teacher = randn(8, 3, seed=2)
    labels = (x @ teacher).argmax(dim=1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    out = {f"mlp.init.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, foreach=False)
    losses = []
    for step in range(MLP_STEPS):
        i = (step * MLP_BATCH) % 256
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i:i + MLP_BATCH]), labels[i:i + MLP_BATCH])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        out["mlp.final_loss"] = F.cross_entropy(model(x), labels).reshape(1).double()
    out.update({"mlp.x": x, "mlp.labels": labels, "mlp.losses": torch.tensor(losses, dtype=torch.float64)})
    print("mlp losses", losses[0], losses[-1], "final", out["mlp.final_loss"].item())
    return out


def bar_images(n, seed):
    labels = (rand(n, seed=seed) > 0.5).long()
    where = (rand(n, seed=seed + 1) * 8).long().clamp(max=7)
    images = randn(n, 1, 8, 8, seed=seed + 2) * 0.3
    for i in range(n):
        if labels[i] == 0:
            images[i, 0, where[i], :] += 1.0
        else:
            images[i, 0, :, where[i]] += 1.0
    return images, labels


def conv_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 2))


def conv_case():
    x, labels = bar_images(96, seed=10)
    torch.manual_seed(1)
    model = conv_model()
    out = {f"conv.init.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, foreach=False)
    losses = []
    for step in range(CONV_STEPS):
        i = (step * CONV_BATCH) % 96
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i:i + CONV_BATCH]), labels[i:i + CONV_BATCH])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        out["conv.eval_loss"] = F.cross_entropy(model(x), labels).reshape(1).double()
    out["conv.running_mean"] = model[1].running_mean.clone()
    out["conv.running_var"] = model[1].running_var.clone()
    out.update({"conv.x": x, "conv.labels": labels, "conv.losses": torch.tensor(losses, dtype=torch.float64)})
    print("conv losses", losses[0], losses[-1], "eval", out["conv.eval_loss"].item())
    return out


def main():
    out = {}
    out.update(mlp_case())
    out.update(conv_case())
    save("training", out)


if __name__ == "__main__":
    main()
