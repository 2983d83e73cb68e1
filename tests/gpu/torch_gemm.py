"""PyTorch's side of bench_cuda_gemm: torch.matmul at the same shapes and dtypes (f32 without
TF32, as cuBLAS is called by the engine, and bf16), and scaled_dot_product_attention at the
ViT-B/16 shape, in TFLOP/s. Used by tests/gpu/check.sh when torch is importable.

    python3 tests/gpu/torch_gemm.py [--json FILE]
"""
import argparse
import json

import torch

from torch_timing import seconds_per_call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(1)
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "matmul": [],
           "sdpa": []}
    shapes = [("square 4096", 4096, 4096, 4096), ("vit-b16 qkv", 1576, 2304, 768),
              ("vit-b16 mlp", 1576, 3072, 768)]
    print(f"device: {out['device']}, torch {out['torch']}")
    for name, m, n, k in shapes:
        for dt_name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            a = torch.randn(m, k, device=dev, dtype=dt)
            w = torch.randn(n, k, device=dev, dtype=dt)  # a linear layer's weight: A @ W^T
            t = seconds_per_call(lambda: torch.matmul(a, w.t()))
            tflops = 2.0 * m * n * k / t / 1e12
            out["matmul"].append({"shape": name, "dtype": dt_name, "M": m, "N": n, "K": k,
                                  "tflops": tflops})
            print(f"matmul {name:12s} {dt_name:5s} {tflops:8.2f} TFLOP/s")
    # The ViT benchmark's linears at batch 256 as a model runs them: F.linear (cuBLASLt with
    # the bias in its epilogue), then the activation.
    acts = {"none": lambda x: x, "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x)}
    for name, m, n, k, act in (("vit-b16 b256 q +bias", 50432, 768, 768, "none"),
                               ("vit-b16 b256 fc1 +bias+quick_gelu", 50432, 3072, 768, "quick_gelu"),
                               ("vit-b16 b256 fc2 +bias", 50432, 768, 3072, "none")):
        dt = torch.bfloat16
        a = torch.randn(m, k, device=dev, dtype=dt)
        w = torch.randn(n, k, device=dev, dtype=dt)
        bias = torch.randn(n, device=dev, dtype=dt)
        f = acts[act]
        t = seconds_per_call(lambda: f(torch.nn.functional.linear(a, w, bias)))
        tflops = 2.0 * m * n * k / t / 1e12
        out["matmul"].append({"shape": name, "dtype": "bf16", "M": m, "N": n, "K": k,
                              "tflops": tflops})
        print(f"linear {name:34s} bf16 {tflops:8.2f} TFLOP/s")
    # ViT-B/16 attention at batch 8: 12 heads of 64 over 197 tokens.
    b, h, s, d = 8, 12, 197, 64
    for dt_name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        q, k, v = (torch.randn(b, h, s, d, device=dev, dtype=dt) for _ in range(3))
        t = seconds_per_call(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
        flop = 4.0 * b * h * s * s * d  # two matrix products
        out["sdpa"].append({"shape": f"vit-b16 b{b} h{h} s{s} d{d}", "dtype": dt_name,
                            "ms": t * 1e3, "tflops": flop / t / 1e12})
        print(f"sdpa vit-b16 {dt_name:5s} {t * 1e3:8.3f} ms {flop / t / 1e12:8.2f} TFLOP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
