"""Fixture for tests/models/test_training_parity.cpp: 20 AdamW steps of EEGProject and of TSConv,
each with the contrastive head, from deterministic weights on deterministic batches (both made
by the shared splitmix64 numbers of eeg_models.py, so only the results are stored).

Setup, the same on both sides: EEG [16, 8, 100] (batch, channels, times), image features
[16, 24], encoder output 8, shared space 16, temperature 0.07; training mode with dropout off
(batch norm on batch statistics); AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-4,
over every encoder and head parameter.

Batch b: image = U(seed 0xDA7A + 2b) [16, 24]; noise = U(seed 0xDA7A + 2b + 1) [16, 8, 100];
eeg[n, c, t] = 0.5 * noise[n, c, t] + image[n, (c * 100 + t) % 24] (in f32), so there is
something to learn.

  <model>.losses                 [20] f64   the loss of each step, before its update
  <model>.encoder.<name>                    every parameter and buffer after the 20 steps
  <model>.head.<name>
"""
import sys

import torch

from common import save
from eeg_models import (ContrastiveHead, deterministic_tensor, dropout_off, fill_deterministic,
                        make_encoder)

BATCH, CHANNELS, TIMES, IMAGE_DIM = 16, 8, 100, 24
EMBED, SHARED, STEPS = 8, 16, 20
ENCODER_SEED, HEAD_SEED, DATA_SEED = 0xE4C0, 0x4EAD, 0xDA7A
LR, WEIGHT_DECAY = 1e-3, 1e-4


def batch(b, dtype=torch.float32):
    image = deterministic_tensor(DATA_SEED + 2 * b, [BATCH, IMAGE_DIM])
    noise = deterministic_tensor(DATA_SEED + 2 * b + 1, [BATCH, CHANNELS, TIMES])
    index = torch.arange(CHANNELS * TIMES) % IMAGE_DIM
    eeg = 0.5 * noise + image[:, index].reshape(BATCH, CHANNELS, TIMES)
    return eeg.to(dtype), image.to(dtype)


def train(name, dtype=torch.float32):
    encoder = make_encoder(name, CHANNELS, TIMES, EMBED)
    head = ContrastiveHead(EMBED, IMAGE_DIM, SHARED)
    fill_deterministic(encoder, ENCODER_SEED)
    fill_deterministic(head, HEAD_SEED)
    encoder.to(dtype)
    head.to(dtype)
    encoder.train()
    head.train()
    dropout_off(encoder)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY, foreach=False)
    losses = []
    for b in range(STEPS):
        eeg, image = batch(b, dtype)
        loss = head.loss(head.embed_eeg(encoder(eeg)), head.embed_image(image))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, encoder, head


def main():
    out = {}
    for name in ["eegproject", "tsconv"]:
        losses, encoder, head = train(name)
        out[f"{name}.losses"] = torch.tensor(losses, dtype=torch.float64)
        for prefix, module in [("encoder", encoder), ("head", head)]:
            for key, t in module.state_dict().items():
                out[f"{name}.{prefix}.{key}"] = t
        print(name, "loss", losses[0], "->", losses[-1])
        if "--spread" in sys.argv:
            # How far f32 rounding alone moves the results: the same run in f64.
            losses64, encoder64, head64 = train(name, torch.float64)
            print("  max relative loss difference f32 vs f64:",
                  max(abs(a - b) / abs(b) for a, b in zip(losses, losses64)))
            for prefix, m32, m64 in [("encoder", encoder, encoder64), ("head", head, head64)]:
                for (key, a), b in zip(m32.state_dict().items(), m64.state_dict().values()):
                    if a.is_floating_point():
                        print(f"  {prefix}.{key}: max |f32 - f64| {(a.double() - b).abs().max():.2e}")
    save("eeg_parity", out)


if __name__ == "__main__":
    main()
