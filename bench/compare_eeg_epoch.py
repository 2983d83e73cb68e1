"""One training epoch of an EEG encoder with the contrastive head, ours against PyTorch, on the
same machine, shapes and thread count; prints seconds per epoch for each and the ratio.

    python3 bench/compare_eeg_epoch.py [--binary build/bin/bench_eeg_epoch] [--encoder eegproject]
        [--threads N] [--epochs 1] [--samples 16540] [--channels 17] [--times 250]
        [--batch 1024] [--image-dim 1024] [--device cpu|cuda] [--rounds 1] [--json FILE]

Both sides: random data [samples, channels, times] and image features [samples, image_dim],
the encoder (EEGProject by default; any of tests/reference/eeg_models.py's ENCODERS, each with
its published defaults on both sides), the head to a shared 1024, AdamW lr 1e-4
and weight decay 1e-4, one untimed step first, then shuffled epochs with the last batch partial.
Our binary runs first (so the two never share the CPUs). With --rounds R the two take turns R
times and each side's fastest round counts: on a shared host whose speed drifts over minutes,
the best of interleaved rounds compares the two at the same machine speed, where one round each
can put one side in a slow spell. With --device cuda both sides keep the data, the model and
the optimizer on the GPU and wait for it once per epoch.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "reference"))
from eeg_models import ENCODERS, ContrastiveHead  # noqa: E402


def ours(args):
    cmd = [args.binary, "--benchmark_format=json"]
    for flag in ["encoder", "threads", "epochs", "samples", "channels", "times", "batch", "image_dim",
                 "device"]:
        cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    bench = json.loads(result.stdout)["benchmarks"][0]
    assert bench["time_unit"] == "s", bench["time_unit"]
    return bench["real_time"], bench.get("peak_device_MiB")  # per iteration = per epoch


def pytorch(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    dev = torch.device(args.device)
    eeg = torch.randn(args.samples, args.channels, args.times, device=dev)
    image = torch.randn(args.samples, args.image_dim, device=dev)
    encoder = ENCODERS[args.encoder](args.channels, args.times).to(dev)
    with torch.no_grad():
        embed_dim = encoder.eval()(eeg[:2]).shape[1]
    head = ContrastiveHead(embed_dim, args.image_dim, 1024).to(dev)
    encoder.train()
    head.train()
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=1e-4,
                            weight_decay=1e-4)

    def step(rows):
        loss = head.loss(head.embed_eeg(encoder(eeg[rows])), head.embed_image(image[rows]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step(torch.arange(min(args.batch, args.samples), device=dev))
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(args.samples).to(dev)
        for first in range(0, args.samples, args.batch):
            step(order[first:first + args.batch])
        sync()
    seconds = (time.perf_counter() - start) / args.epochs
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return seconds, peak


def compare(args, rounds=1):
    """Ours and PyTorch in turns, `rounds` times: the fastest seconds per epoch of each side,
    with the device peaks of our first round and PyTorch's, and every round's figures."""
    rounds_s = []
    peaks = (None, None)
    for r in range(max(1, rounds)):
        ours_s, ours_peak = ours(args)
        torch_s, torch_peak = pytorch(args)
        rounds_s.append((ours_s, torch_s))
        if r == 0:
            peaks = (ours_peak, torch_peak)
    return min(o for o, _ in rounds_s), min(t for _, t in rounds_s), peaks, rounds_s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=str(ROOT / "build" / "bin" / "bench_eeg_epoch"))
    p.add_argument("--encoder", default="eegproject", choices=sorted(ENCODERS))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=16540)
    p.add_argument("--channels", type=int, default=17)
    p.add_argument("--times", type=int, default=250)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--image-dim", type=int, default=1024)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=1,
                   help="turns of ours then PyTorch; each side's fastest counts")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()

    print(f"{args.encoder} + head, {args.samples} x {args.channels} x {args.times}, batch {args.batch}, "
          f"image features {args.image_dim}, {args.threads} threads, {args.epochs} epoch(s) each, "
          f"on {args.device}")
    ours_s, torch_s, (ours_peak, torch_peak), rounds_s = compare(args, args.rounds)
    if len(rounds_s) > 1:
        for r, (o, t) in enumerate(rounds_s):
            print(f"  round {r + 1}: shallow {o:.3f} s, PyTorch {t:.3f} s ({t / o:.2f}x)")
        print(f"  fastest of {len(rounds_s)} rounds each:")
    print(f"  shallow   {ours_s:8.3f} s/epoch")
    print(f"  PyTorch   {torch_s:8.3f} s/epoch  (torch {torch.__version__})")
    print(f"  speed-up of shallow over PyTorch: {torch_s / ours_s:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"encoder": args.encoder, "device": args.device, "samples": args.samples, "batch": args.batch,
                       "epochs": args.epochs, "rounds": rounds_s, "shallow_s": ours_s, "torch_s": torch_s,
                       "speedup": torch_s / ours_s, "shallow_peak_MiB": ours_peak,
                       "torch_peak_MiB": torch_peak, "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
