"""Fixtures for scaled_dot_product_attention: q, k, v, the mask (u8 where 1 = attend, or
float additive), the output and the gradients of sum(out * g). The cases, with their
arguments, are listed in the metadata."""
import json

import torch
import torch.nn.functional as F

from common import rand, randn, save

# name: q shape, k shape, v shape, is_causal, mask ("bool"/"float", shape) or None, scale
CASES = [
    ("basic", [2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 6], False, None, None),
    ("causal_square", [1, 2, 6, 4], [1, 2, 6, 4], [1, 2, 6, 4], True, None, None),
    ("causal_short_q", [2, 4, 4], [2, 7, 4], [2, 7, 5], True, None, None),
    ("causal_long_q", [2, 7, 4], [2, 4, 4], [2, 4, 5], True, None, None),
    ("bool_mask_2d", [2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 6], False, ("bool", [5, 7]), None),
    ("bool_key_padding", [2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 6], False, ("bool", [2, 1, 1, 7]), None),
    ("bool_full_rows", [2, 3, 5, 4], [2, 3, 6, 4], [2, 3, 6, 4], False, ("bool_full_rows", [2, 3, 5, 6]), None),
    ("float_mask", [2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 6], False, ("float", [3, 5, 7]), None),
    ("float_row_broadcast", [2, 5, 4], [2, 7, 4], [2, 7, 4], False, ("float", [1, 5, 1]), None),
    ("float_full_rows", [1, 2, 4, 4], [1, 2, 6, 4], [1, 2, 6, 3], False, ("float_full_rows", [2, 4, 6]), None),
    ("broadcast_kv", [2, 3, 5, 8], [3, 7, 8], [7, 6], False, None, None),
    ("broadcast_q", [1, 5, 8], [2, 3, 7, 8], [2, 1, 7, 6], False, None, None),
    ("scale", [2, 2, 5, 8], [2, 2, 7, 8], [2, 2, 7, 8], False, None, 0.3),
    ("two_d", [5, 8], [7, 8], [7, 2], False, None, None),
    ("long_masked", [1, 70, 4], [1, 150, 4], [1, 150, 3], False, ("bool", [70, 150]), None),
    ("long_causal", [1, 140, 4], [1, 140, 4], [1, 140, 3], True, None, None),
    ("causal_and_float_mask", [1, 2, 6, 4], [1, 2, 6, 4], [1, 2, 6, 4], True, ("float", [2, 6, 6]), None),
]


def make_mask(kind, shape, seed):
    if kind.startswith("bool"):
        keep = rand(*shape, seed=seed) < 0.7
        if kind == "bool_full_rows":
            keep[..., 1, :] = False
            keep[0, 1, 3, :] = False
        return keep
    m = randn(*shape, seed=seed)
    m[rand(*shape, seed=seed + 1) < 0.2] = float("-inf")
    if kind == "float_full_rows":
        m[..., 2, :] = float("-inf")
    return m


def main():
    tensors, meta = {}, []
    for i, (name, qs, ks, vs, causal, mask_spec, scale) in enumerate(CASES):
        key = f"sdpa.{name}"
        q = randn(*qs, seed=10 * i).requires_grad_()
        k = randn(*ks, seed=10 * i + 1).requires_grad_()
        v = randn(*vs, seed=10 * i + 2).requires_grad_()
        mask = make_mask(mask_spec[0], mask_spec[1], 10 * i + 3) if mask_spec else None
        if causal and mask is not None:
            # PyTorch refuses both at once; the engine applies both, which is this.
            allowed = torch.ones(qs[-2], ks[-2], dtype=torch.bool).tril()
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask.masked_fill(~allowed, float("-inf")), scale=scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                                 scale=scale)
        g = randn(*out.shape, seed=10 * i + 4)
        out.backward(g)
        tensors.update({f"{key}.q": q, f"{key}.k": k, f"{key}.v": v, f"{key}.out": out,
                        f"{key}.g": g, f"{key}.gq": q.grad, f"{key}.gk": k.grad,
                        f"{key}.gv": v.grad})
        if mask is not None:
            tensors[f"{key}.mask"] = mask.to(torch.uint8) if mask.dtype == torch.bool else mask
        meta.append({"name": name, "causal": causal, "scale": scale,
                     "mask": mask_spec[0].split("_")[0] if mask_spec else "none"})
    save("ops_attention", tensors, {"cases": json.dumps(meta)})


if __name__ == "__main__":
    main()
