"""Fixture for tests/models/test_eeg_encoders.cpp: each encoder of eeg_models.py on the two
THINGS-EEG2 input sizes, with weights and inputs from the shared deterministic numbers (so that
only outputs are stored).

Per encoder <e> and size <C>x<T> (embed dim 16):
  <e>.<C>x<T>.eval_output     [2, 16]  eval mode (running statistics, no dropout)
  <e>.<C>x<T>.train_output    [4, 16]  training mode with dropout off (batch statistics)
  <e>.<C>x<T>.running_mean.<buffer>    the running means after that training-mode forward
Per encoder at 17x100, gradients of sum(train_output * r) with r deterministic, each summed
against its own deterministic probe (a strong check that stores one number per tensor):
  <e>.17x100.grad_probe       [P + 1]  one per parameter, in named order, then the input's
  <e>.17x100.grad_l2          [P + 1]  the L2 norm of the same gradients (the scale for tolerances)
Metadata "state_dicts": JSON {"<e>.<C>x<T>": [[name, shape], ...]} of the encoders at their
default sizes, parameters and buffers, as torch's state_dict() orders them; metadata
"grad_probe_names": JSON {"<e>.17x100": [name, ...]}, the order of the probes.
"""
import json

import torch

from common import save
from eeg_models import (ENCODERS, deterministic_tensor, dropout_off, fill_deterministic,
                        fnv1a64, make_encoder)

SIZES = [(17, 100), (63, 250)]
EMBED = 16
WEIGHT_SEED = 0x5EED
INPUT_SEED = 0x1A7A
TRAIN_INPUT_SEED = 0x7A1A
OUTPUT_PROBE_SEED = 0x0B5E
GRAD_PROBE_SEED = 0x6AAD


def main():
    out = {}
    state_dicts = {}
    probe_names = {}
    for name in ENCODERS:
        for channels, times in SIZES:
            key = f"{name}.{channels}x{times}"
            default = make_encoder(name, channels, times)
            state_dicts[key] = [[n, list(t.shape)] for n, t in default.state_dict().items()]

            model = make_encoder(name, channels, times, EMBED)
            fill_deterministic(model, WEIGHT_SEED)
            model.eval()
            x = deterministic_tensor(INPUT_SEED, [2, channels, times])
            with torch.no_grad():
                out[f"{key}.eval_output"] = model(x)

            model.train()
            dropout_off(model)
            x = deterministic_tensor(TRAIN_INPUT_SEED, [4, channels, times]).requires_grad_()
            y = model(x)
            out[f"{key}.train_output"] = y.detach()
            for buffer_name, b in model.named_buffers():
                if buffer_name.endswith("running_mean"):
                    out[f"{key}.running_mean.{buffer_name}"] = b.clone()
            if channels != 17:
                continue
            r = deterministic_tensor(OUTPUT_PROBE_SEED, list(y.shape))
            (y * r).sum().backward()
            probes, l2 = [], []
            named = list(model.named_parameters()) + [("input", x)]
            for param_name, p in named:
                g = p.grad.double()
                probe = deterministic_tensor(GRAD_PROBE_SEED ^ fnv1a64(param_name), list(g.shape))
                probes.append((g * probe.double()).sum())
                l2.append(g.norm())
            probe_names[key] = [n for n, _ in named]
            out[f"{key}.grad_probe"] = torch.stack(probes)
            out[f"{key}.grad_l2"] = torch.stack(l2)
    save("eeg_encoders", out, metadata={"state_dicts": json.dumps(state_dicts),
                                        "grad_probe_names": json.dumps(probe_names)})


if __name__ == "__main__":
    main()
