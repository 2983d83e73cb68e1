"""Shared helpers for the fixture scripts: deterministic inputs and one writer.

Each script builds a dict {"case.tensor": torch.Tensor} and calls save(family, tensors); the
C++ tests read tests/fixtures/<family>.safetensors through tests/support/fixtures.h.
"""
import os
import pathlib

import torch
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


def generator(seed):
    g = torch.Generator().manual_seed(seed)
    return g


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=generator(seed), dtype=torch.float64).to(dtype)


def rand(*shape, seed=0, low=0.0, high=1.0, dtype=torch.float32):
    x = torch.rand(*shape, generator=generator(seed), dtype=torch.float64)
    return (low + (high - low) * x).to(dtype)


def save(family, tensors, metadata=None):
    FIXTURES.mkdir(parents=True, exist_ok=True)
    out = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    path = FIXTURES / f"{family}.safetensors"
    meta = {"torch": torch.__version__, "made_by": os.path.basename(__import__("sys").argv[0])}
    meta.update(metadata or {})
    save_file(out, str(path), metadata=meta)
    print(f"wrote {path.relative_to(FIXTURES.parent.parent)} ({len(out)} tensors, "
          f"{path.stat().st_size} bytes)")
