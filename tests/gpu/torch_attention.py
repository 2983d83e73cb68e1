"""PyTorch's side of bench/bench_cuda_attention.cpp: torch.nn.functional.scaled_dot_product_attention
at the same shapes, dtypes and passes (forward; forward + backward), under the same names, in ms
and TFLOP/s counted the same way (forward 4 B H S^2 D; forward + backward 3.5 times that).
Used by tests/gpu/check.sh when torch is importable.

    python3 tests/gpu/torch_attention.py [--json FILE] [--quick]
"""
import argparse
import json

import torch
import torch.nn.functional as F

from torch_timing import seconds_per_call

SHAPES = [("vit-b16 b8", 8, 12, 197, 64), ("vit-b16 b256", 256, 12, 197, 64),
          ("b1 h8 s2048 d64", 1, 8, 2048, 64), ("b4 h16 s1024 d128", 4, 16, 1024, 128)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(1)
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": []}
    print(f"device: {out['device']}, torch {out['torch']}")
    for name, b, h, s, d in SHAPES[:1] if args.quick else SHAPES:
        for dt_name, dt in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            q, k, v, g = (torch.randn(b, h, s, d, device=dev, dtype=dt) for _ in range(4))
            flop = 4.0 * b * h * s * s * d

            def forward():
                with torch.no_grad():
                    F.scaled_dot_product_attention(q, k, v)

            def forward_backward():
                ql, kl, vl = (x.detach().requires_grad_() for x in (q, k, v))
                o = F.scaled_dot_product_attention(ql, kl, vl)
                torch.autograd.grad(o, (ql, kl, vl), g)

            for pass_name, fn, f in (("forward", forward, flop),
                                     ("forward+backward", forward_backward, 3.5 * flop)):
                t = seconds_per_call(fn)
                out["results"].append({"shape": name, "dtype": dt_name, "pass": pass_name, "B": b,
                                       "H": h, "S": s, "D": d, "ms": t * 1e3,
                                       "tflops": f / t / 1e12})
                print(f"sdpa {name:18s} {dt_name:5s} {pass_name:17s} {t * 1e3:9.4f} ms "
                      f"{f / t / 1e12:8.2f} TFLOP/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
