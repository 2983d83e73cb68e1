"""Fixtures for avg_pool2d, max_pool2d and adaptive_avg_pool2d: inputs, outputs and the
gradients of sum(y * gy). The cases, with their arguments, are listed in the metadata."""
import json
import zlib

import torch
import torch.nn.functional as F

from common import randn, save

# name: input shape, kernel, stride (None = kernel), padding, ceil_mode, count_include_pad
AVG = [
    ("k2", [2, 3, 6, 7], [2, 2], None, [0, 0], False, True),
    ("k3_s2_p1", [2, 2, 7, 8], [3, 3], [2, 2], [1, 1], False, True),
    ("k3_s2_p1_exclude_pad", [2, 2, 7, 8], [3, 3], [2, 2], [1, 1], False, False),
    ("ceil", [1, 2, 6, 9], [3, 2], [2, 2], [1, 0], True, True),
    ("ceil_exclude_pad", [1, 2, 6, 9], [3, 2], [2, 2], [1, 0], True, False),
    ("ceil_drops_last", [1, 1, 5, 5], [2, 2], [2, 2], [1, 1], True, True),
    ("rect", [2, 3, 5, 11], [1, 4], [1, 3], [0, 2], False, False),
    ("three_d", [3, 5, 6], [2, 3], [1, 2], [1, 1], True, True),
]

# name: input shape, kernel, stride (None = kernel), padding, dilation, ceil_mode, ties?
MAX = [
    ("k2", [2, 3, 6, 7], [2, 2], None, [0, 0], [1, 1], False, False),
    ("k3_s2_p1", [2, 2, 7, 8], [3, 3], [2, 2], [1, 1], [1, 1], False, False),
    ("dilation", [1, 2, 9, 10], [3, 2], [1, 2], [1, 1], [2, 3], False, False),
    ("ceil", [1, 2, 6, 9], [3, 2], [2, 2], [1, 0], [1, 1], True, False),
    ("ceil_dilation", [2, 1, 8, 7], [2, 3], [2, 1], [1, 1], [2, 2], True, False),
    ("overlap_ties", [1, 2, 6, 6], [3, 3], [1, 1], [1, 1], [1, 1], False, True),
    ("three_d", [3, 5, 6], [2, 3], [1, 2], [1, 1], [1, 1], True, False),
]

# name: input shape, output size
ADAPTIVE = [
    ("down", [2, 3, 7, 9], [3, 4]),
    ("global", [2, 4, 5, 5], [1, 1]),
    ("same", [1, 2, 4, 6], [4, 6]),
    ("up", [1, 2, 5, 7], [7, 9]),
    ("three_d", [3, 10, 6], [4, 5]),
]


def record(tensors, key, x, y):
    gy = randn(*y.shape, seed=zlib.crc32(key.encode()) % 10007)
    y.backward(gy)
    tensors.update({f"{key}.x": x, f"{key}.y": y, f"{key}.gy": gy, f"{key}.gx": x.grad})


def main():
    tensors, meta = {}, {"avg": [], "max": [], "adaptive": []}
    for i, (name, xs, k, s, p, ceil, cip) in enumerate(AVG):
        x = randn(*xs, seed=1000 + i).requires_grad_()
        y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        record(tensors, f"avg.{name}", x, y)
        meta["avg"].append({"name": name, "kernel": k, "stride": s or [0, 0], "padding": p,
                            "ceil_mode": ceil, "count_include_pad": cip})
    for i, (name, xs, k, s, p, d, ceil, ties) in enumerate(MAX):
        x = randn(*xs, seed=2000 + i)
        if ties:  # few distinct values: windows share their maxima
            x = torch.round(x)
        x.requires_grad_()
        y = F.max_pool2d(x, k, s, p, dilation=d, ceil_mode=ceil)
        record(tensors, f"max.{name}", x, y)
        meta["max"].append({"name": name, "kernel": k, "stride": s or [0, 0], "padding": p,
                            "dilation": d, "ceil_mode": ceil})
    for i, (name, xs, out) in enumerate(ADAPTIVE):
        x = randn(*xs, seed=3000 + i).requires_grad_()
        y = F.adaptive_avg_pool2d(x, out)
        record(tensors, f"adaptive.{name}", x, y)
        meta["adaptive"].append({"name": name, "output_size": out})
    save("ops_pool", tensors, {"cases": json.dumps(meta)})


if __name__ == "__main__":
    main()
