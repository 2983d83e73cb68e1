"""PyTorch's side of the CPU report (bench/cpu_report.py): the same operations as our benchmark
binaries, at the same shapes, timed the same way (the best of several repetitions, each long
enough to average out the clock). The caller sets the thread count with torch.set_num_threads.

Every function returns seconds per call; the report turns them into rates.
"""
import time

import torch
import torch.nn.functional as F


def best_seconds(fn, repetitions, min_time):
    """The best per-call time over `repetitions` runs of at least `min_time` seconds each,
    after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repetitions):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def gemm(trans, m, n, k, dtype, repetitions, min_time):
    """torch.matmul of op(A) [m, k] and op(B) [k, n]; a T operand is a transposed view of a
    contiguous tensor, as our gemm reads it (no copy on either side)."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(k, m, generator=g).to(dtype).t() if trans[0] == "T" else torch.randn(m, k, generator=g).to(dtype)
    b = torch.randn(n, k, generator=g).to(dtype).t() if trans[1] == "T" else torch.randn(k, n, generator=g).to(dtype)
    with torch.inference_mode():
        return best_seconds(lambda: torch.matmul(a, b), repetitions, min_time)


def attention(batch, heads, tokens, dim, causal, backward, repetitions, min_time):
    """F.scaled_dot_product_attention on [batch, heads, tokens, dim]; with `backward`, the
    forward plus the gradients of q, k and v."""
    g = torch.Generator().manual_seed(0)
    shape = (batch, heads, tokens, dim)
    q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
    if not backward:
        with torch.inference_mode():
            return best_seconds(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                repetitions, min_time)
    for t in (q, k, v):
        t.requires_grad_(True)
    grad = torch.randn(shape, generator=g)

    def step():
        F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(grad)
        for t in (q, k, v):
            t.grad = None

    return best_seconds(step, repetitions, min_time)


def conv2d(batch, c_in, c_out, h, w, kh, kw, pad, backward, repetitions, min_time):
    """F.conv2d with bias and `pad` zeros on each side; backward 0: forward only, 1: + weight
    and bias gradients, 2: + the input gradient (bench_conv's meaning)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(batch, c_in, h, w, generator=g)
    weight = torch.randn(c_out, c_in, kh, kw, generator=g) * 0.1
    bias = torch.randn(c_out, generator=g)
    if backward == 0:
        with torch.inference_mode():
            return best_seconds(lambda: F.conv2d(x, weight, bias, padding=pad), repetitions, min_time)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    x.requires_grad_(backward >= 2)
    grad = torch.randn(batch, c_out, h + 2 * pad - kh + 1, w + 2 * pad - kw + 1, generator=g)

    def step():
        F.conv2d(x, weight, bias, padding=pad).backward(grad)
        weight.grad = bias.grad = x.grad = None

    return best_seconds(step, repetitions, min_time)


def resnet50_images_per_second(batch, seconds):
    """CLIP RN50 (OpenCLIP's ModifiedResNet, random weights, eval mode) forward in images/s,
    as bench_resnet times ours."""
    import open_clip

    visual = open_clip.create_model("RN50", pretrained=None).visual.eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        per_call = best_seconds(lambda: visual(x), 1, seconds)
    return batch / per_call


def vit_images_per_second(patch, batch, layer, dtype, seconds):
    """ViT-B/`patch` (OpenCLIP's vision tower, random weights) forward in images/s, as
    bench/compare_vit.py measures it; bf16 casts the model and the input (no autocast)."""
    import compare_vit  # bench/ is on the path: the report runs from there

    if dtype == torch.float32:
        return compare_vit.torch_rate(patch, batch, layer, seconds)
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    visual = _build_vision_tower(512, CLIPVisionCfg(layers=12, width=768, patch_size=patch,
                                                    image_size=224), quick_gelu=True).eval().to(dtype)
    if layer >= 0:
        visual.transformer.resblocks = visual.transformer.resblocks[:layer]
    x = torch.randn(batch, 3, 224, 224).to(dtype)
    with torch.inference_mode():
        per_call = best_seconds(lambda: visual(x), 1, seconds)
    return batch / per_call
