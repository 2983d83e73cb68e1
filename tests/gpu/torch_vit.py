"""PyTorch's side of bench_cuda_vit: the same ViT-B/16 shape (CLIP's vision tower from
transformers, 224 px, quick GELU, projection to 512) in eager mode, bf16 and f32, images/s and
peak GPU memory (torch.cuda.max_memory_allocated, weights included). Random weights.

    python3 tests/gpu/torch_vit.py [--json FILE] [--batch 256] [--seconds 2]
"""
import argparse
import json
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection


def rate(dtype, batch, seconds):
    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=16,
                           projection_dim=512, hidden_act="quick_gelu")
    model = CLIPVisionModelWithProjection(cfg).to("cuda", dtype).eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=dtype)
    with torch.inference_mode():
        model(pixel_values=x)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or calls < 3:
            model(pixel_values=x)
            torch.cuda.synchronize()
            calls += 1
        elapsed = time.perf_counter() - t0
    return {"dtype": "bf16" if dtype == torch.bfloat16 else "f32", "batch": batch,
            "images_per_s": calls * batch / elapsed,
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
            "attention": model.config._attn_implementation}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": []}
    for dtype in (torch.bfloat16, torch.float32):
        r = rate(dtype, args.batch, args.seconds)
        out["results"].append(r)
        print(f"ViT-B/16 {r['dtype']:5s} batch {r['batch']}: {r['images_per_s']:9.1f} images/s, "
              f"peak {r['peak_mib']:.1f} MiB ({r['attention']} attention)")
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
