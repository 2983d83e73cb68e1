"""Timing shared by the PyTorch sides of the GPU benchmarks (torch_gemm.py,
torch_attention.py): seconds per call of a CUDA workload, measured as the engine's
benchmarks measure theirs."""
import time

import torch


def seconds_per_call(fn):
    """Three warm-up calls, then back-to-back calls until they take a quarter of a second."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        s = time.perf_counter() - t0
        if s > 0.25 or calls >= 1 << 14:
            return s / calls
        calls *= 16 if s < 0.01 else 2
