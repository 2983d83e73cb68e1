"""ViT-B/16 and ViT-B/32 forward on the CPU: PyTorch (OpenCLIP's VisionTransformer) beside our
bench_vit, same shapes, same thread count, images/s and the ratio ours / PyTorch.

    python3 bench/compare_vit.py --bench build/bin/bench_vit [--threads 2] [--seconds 2]

The cases are bench_vit's: B/32 and B/16 at batch 1 and 8, and B/16 batch 8 stopped after
block 6 (PyTorch runs the first six blocks only), which should cost about half the full pass.
"""
import argparse
import json
import subprocess
import time

import torch

CASES = [(32, 1, -1), (32, 8, -1), (16, 1, -1), (16, 8, -1), (16, 8, 6)]


def torch_rate(patch, batch, layer, seconds):
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    visual = _build_vision_tower(512, CLIPVisionCfg(layers=12, width=768, patch_size=patch,
                                                    image_size=224), quick_gelu=True).eval()
    x = torch.randn(batch, 3, 224, 224)

    def run():
        if layer < 0:
            return visual(x)
        # The embeddings and the first `layer` blocks, as forward_layers stops there.
        h = visual.conv1(x).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.expand(batch, 1, -1)
        h = visual.ln_pre(torch.cat([cls, h], 1) + visual.positional_embedding)
        for block in visual.transformer.resblocks[:layer]:
            h = block(h)
        return h

    with torch.inference_mode():
        run()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 2:
            run()
            n += 1
        return n * batch / (time.perf_counter() - t0)


def ours(bench, threads):
    out = subprocess.run([bench, "--benchmark_format=json"],
                         capture_output=True, text=True, check=True,
                         env={"SHALLOW_THREADS": str(threads)})
    rates = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        args = dict(part.split(":") for part in b["name"].split("/")[1:4])
        rates[(int(args["patch"]), int(args["batch"]), int(args["layer"]))] = b["items_per_second"]
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="the bench_vit binary")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seconds", type=float, default=2.0, help="PyTorch timing per case")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mine = ours(args.bench, args.threads)
    print(f"{'case':<22} {'PyTorch img/s':>14} {'shallow img/s':>14} {'ratio':>7}   ({args.threads} threads)")
    for patch, batch, layer in CASES:
        theirs = torch_rate(patch, batch, layer, args.seconds)
        us = mine.get((patch, batch, layer), float("nan"))
        name = f"B/{patch} batch {batch}" + (f" to layer {layer}" if layer >= 0 else "")
        print(f"{name:<22} {theirs:14.2f} {us:14.2f} {us / theirs:7.2f}")


if __name__ == "__main__":
    main()
