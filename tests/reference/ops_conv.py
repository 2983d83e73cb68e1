"""Fixtures for conv2d and conv1d: inputs, weights, bias, outputs and (for a few cases) the
gradients of sum(y * gy). The cases, with their arguments, are listed in the metadata."""
import json

import torch
import torch.nn.functional as F

from common import randn, save

# name: input shape, weight shape, bias?, stride, padding, dilation, groups, with gradients?
CASES_2D = [
    ("basic", [2, 3, 7, 9], [4, 3, 3, 3], True, [1, 1], [0, 0], [1, 1], 1, True),
    ("stride_pad", [2, 3, 8, 7], [5, 3, 3, 2], True, [2, 1], [1, 0], [1, 1], 1, False),
    ("stride3_pad2", [1, 2, 9, 10], [3, 2, 4, 3], False, [3, 2], [2, 1], [1, 1], 1, False),
    ("dilation", [2, 3, 9, 8], [4, 3, 3, 3], True, [1, 1], [2, 1], [2, 1], 1, True),
    ("groups", [2, 6, 6, 5], [4, 3, 3, 3], True, [1, 2], [1, 1], [1, 1], 2, True),
    ("groups3_dil", [1, 6, 8, 8], [9, 2, 2, 3], False, [2, 1], [1, 2], [2, 2], 3, False),
    ("depthwise", [2, 4, 6, 7], [4, 1, 3, 3], True, [1, 1], [1, 1], [1, 1], 4, True),
    ("depthwise_mult2", [2, 4, 6, 7], [8, 1, 3, 3], False, [2, 2], [1, 1], [1, 1], 4, False),
    ("depthwise_dilated", [1, 3, 9, 9], [3, 1, 3, 2], True, [1, 2], [2, 1], [2, 3], 3, False),
    ("pointwise", [2, 5, 4, 3], [6, 5, 1, 1], True, [1, 1], [0, 0], [1, 1], 1, True),
    ("pointwise_groups", [2, 4, 3, 5], [6, 2, 1, 1], False, [1, 1], [0, 0], [1, 1], 2, False),
    ("downsample_1x1_s2", [2, 4, 7, 7], [6, 4, 1, 1], False, [2, 2], [0, 0], [1, 1], 1, False),
    ("resnet_stem", [1, 3, 20, 18], [8, 3, 7, 7], False, [2, 2], [3, 3], [1, 1], 1, False),
    ("eeg_temporal", [2, 1, 5, 40], [6, 1, 1, 25], True, [1, 1], [0, 0], [1, 1], 1, True),
    ("eeg_spatial", [2, 6, 5, 16], [6, 6, 5, 1], True, [1, 1], [0, 0], [1, 1], 1, False),
    ("eegnet_depthwise", [2, 4, 5, 12], [8, 1, 5, 1], False, [1, 1], [0, 0], [1, 1], 4, False),
    ("eegnet_separable", [2, 4, 1, 20], [4, 1, 1, 7], False, [1, 1], [0, 3], [1, 1], 4, False),
    ("kernel_fills_padded", [1, 2, 3, 4], [3, 2, 5, 6], True, [1, 1], [1, 1], [1, 1], 1, False),
]

# name: input shape, weight shape, bias?, stride, padding, dilation, groups, with gradients?
CASES_1D = [
    ("basic", [2, 3, 11], [4, 3, 3], True, 1, 0, 1, 1, True),
    ("all_options", [2, 4, 13], [6, 2, 3], True, 2, 1, 2, 2, True),
    ("depthwise", [1, 3, 10], [3, 1, 4], False, 1, 2, 1, 3, False),
]


def main():
    tensors, meta = {}, {"conv2d": [], "conv1d": []}
    seed = 0
    for family, cases, fn in (("conv2d", CASES_2D, F.conv2d), ("conv1d", CASES_1D, F.conv1d)):
        for name, xs, ws, has_bias, stride, padding, dilation, groups, grads in cases:
            key = f"{family}.{name}"
            seed += 1
            x = randn(*xs, seed=100 * seed).requires_grad_(grads)
            w = randn(*ws, seed=100 * seed + 1).requires_grad_(grads)
            b = randn(ws[0], seed=100 * seed + 2).requires_grad_(grads) if has_bias else None
            y = fn(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
            tensors.update({f"{key}.x": x, f"{key}.w": w, f"{key}.y": y})
            if has_bias:
                tensors[f"{key}.b"] = b
            if grads:
                gy = randn(*y.shape, seed=100 * seed + 3)
                y.backward(gy)
                tensors.update({f"{key}.gy": gy, f"{key}.gx": x.grad, f"{key}.gw": w.grad})
                if has_bias:
                    tensors[f"{key}.gb"] = b.grad
            meta[family].append({"name": name, "stride": stride, "padding": padding,
                                 "dilation": dilation, "groups": groups, "bias": has_bias,
                                 "grads": grads})
    save("ops_conv", tensors, {"cases": json.dumps(meta)})


if __name__ == "__main__":
    main()
