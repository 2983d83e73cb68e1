"""bf16 GEMM on the CPU: PyTorch's torch.matmul (bf16 in, bf16 out, f32 sums) beside our
bench_gemm_bf16, same shapes, same thread count, GFLOP/s and the ratio ours / PyTorch.

    python3 bench/compare_gemm_bf16.py --bench build/bin/bench_gemm_bf16 [--threads 2]

Shapes are (M, N, K): x [M, K] times a weight [N, K] transposed (a linear layer: the ViT-B/16
qkv, fc1 and fc2 products at batch 8, 1576 tokens) and squares. On a shared machine, run it
when nothing else is: each side takes its best of several repetitions.
"""
import argparse
import json
import os
import subprocess
import time

import torch

SHAPES = [(1576, 2304, 768), (1576, 3072, 768), (1576, 768, 3072), (1024, 1024, 1024),
          (4096, 4096, 4096)]


def torch_gflops(M, N, K, seconds):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(M, K, generator=g).to(torch.bfloat16)
    w = torch.randn(N, K, generator=g).to(torch.bfloat16)
    with torch.inference_mode():
        torch.matmul(a, w.t())
        best, t_end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < t_end or best == float("inf"):
            t0 = time.perf_counter()
            torch.matmul(a, w.t())
            best = min(best, time.perf_counter() - t0)
    return 2.0 * M * N * K / best / 1e9


def ours_gflops(bench, threads, seconds):
    out = subprocess.run([bench, "--benchmark_format=json", "--benchmark_filter=BM_GemmBf16_NT/",
                          f"--benchmark_min_time={seconds}", "--benchmark_repetitions=3"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "SHALLOW_THREADS": str(threads)})
    rates = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        shape = tuple(int(x) for x in b["name"].split("/")[1:4])
        rates[shape] = max(rates.get(shape, 0.0), b["GFLOP/s"] / 1e9)
    return rates


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ours = ours_gflops(args.bench, args.threads, args.seconds)
    print(f"{'M x N x K':>20} {'ours GFLOP/s':>13} {'torch GFLOP/s':>14} {'ours/torch':>11}")
    for M, N, K in SHAPES:
        t = torch_gflops(M, N, K, args.seconds)
        o = ours.get((M, N, K), float("nan"))
        print(f"{f'{M} x {N} x {K}':>20} {o:13.1f} {t:14.1f} {o / t:11.2f}")


if __name__ == "__main__":
    main()
