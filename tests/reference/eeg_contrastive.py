"""Fixture for tests/models/test_contrastive.cpp: the contrastive head of eeg_models.py (a Linear
per modality, L2 normalization, exp(logit_scale), symmetric InfoNCE) on deterministic weights
and features (eeg_dim 10, image_dim 12, shared 8, batch 6).

  <case>.eeg_embedded, <case>.image_embedded   [6, 8]
  <case>.loss                                  []
  <case>.grad.<name>                           the loss's gradient for every parameter, and for
                                               the two inputs (grad.eeg_features, grad.image_features)
Cases: t007 (temperature 0.07, the default) and t05 (temperature 0.5).
"""
import torch

from common import save
from eeg_models import ContrastiveHead, deterministic_tensor, fill_deterministic

WEIGHT_SEED = 0xC0DE
EEG_SEED, IMAGE_SEED = 0xEE6, 0x1A6E
N, EEG_DIM, IMAGE_DIM, SHARED = 6, 10, 12, 8


def main():
    out = {}
    for case, temperature in [("t007", 0.07), ("t05", 0.5)]:
        head = ContrastiveHead(EEG_DIM, IMAGE_DIM, SHARED, temperature)
        fill_deterministic(head, WEIGHT_SEED)
        eeg = deterministic_tensor(EEG_SEED, [N, EEG_DIM]).requires_grad_()
        image = deterministic_tensor(IMAGE_SEED, [N, IMAGE_DIM]).requires_grad_()
        e, i = head.embed_eeg(eeg), head.embed_image(image)
        loss = head.loss(e, i)
        loss.backward()
        out[f"{case}.eeg_embedded"] = e.detach()
        out[f"{case}.image_embedded"] = i.detach()
        out[f"{case}.loss"] = loss.detach()
        for name, p in head.named_parameters():
            out[f"{case}.grad.{name}"] = p.grad
        out[f"{case}.grad.eeg_features"] = eeg.grad
        out[f"{case}.grad.image_features"] = image.grad
    save("eeg_contrastive", out)


if __name__ == "__main__":
    main()
