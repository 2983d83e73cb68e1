"""Fixtures for tests/engine/test_nn.cpp: modules with given weights against torch.nn
(MultiheadAttention with masks, BatchNorm2d across train/eval, LayerNorm, Conv1d/Conv2d)."""
import torch

from common import randn, save

E, H, L, S, N = 8, 2, 5, 7, 3


def mha_cases():
    out = {}
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(E, H)
    with torch.no_grad():
        mha.in_proj_weight.copy_(randn(3 * E, E, seed=1) * 0.3)
        mha.in_proj_bias.copy_(randn(3 * E, seed=2) * 0.1)
        mha.out_proj.weight.copy_(randn(E, E, seed=3) * 0.3)
        mha.out_proj.bias.copy_(randn(E, seed=4) * 0.1)
    for k, v in mha.state_dict().items():
        out[f"mha.{k}"] = v
    q = randn(L, N, E, seed=10)
    k = randn(S, N, E, seed=11)
    v = randn(S, N, E, seed=12)
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[0, 5:] = True  # the first sequence has 2 padded keys, the last 4
    pad[2, 3:] = True
    attn_mask = randn(L, S, seed=13) * 0.5  # a float mask, added to the scores
    out.update({"mha.q": q, "mha.k": k, "mha.v": v, "mha.key_padding_mask": pad.to(torch.uint8),
                "mha.attn_mask": attn_mask})

    x = q.clone().requires_grad_(True)
    y, _ = mha(x, x, x)  # self-attention
    out["mha.self.out"] = y
    y.pow(2).sum().backward()
    out["mha.self.grad_x"] = x.grad
    out["mha.self.grad_in_proj_weight"] = mha.in_proj_weight.grad
    out["mha.self.grad_out_proj_bias"] = mha.out_proj.bias.grad

    out["mha.cross_pad.out"], _ = mha(q, k, v, key_padding_mask=pad)
    out["mha.cross_both.out"], _ = mha(q, k, v, key_padding_mask=pad, attn_mask=attn_mask)
    bool_mask = torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=3)
    out["mha.bool_mask"] = bool_mask.to(torch.uint8)
    out["mha.cross_bool.out"], _ = mha(q, k, v, attn_mask=bool_mask)

    bf = torch.nn.MultiheadAttention(E, H, batch_first=True)
    bf.load_state_dict(mha.state_dict())
    out["mha.batch_first.out"], _ = bf(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                       key_padding_mask=pad)
    return out


def batch_norm_cases():
    bn = torch.nn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        bn.weight.copy_(randn(3, seed=30) * 0.5 + 1)
        bn.bias.copy_(randn(3, seed=31) * 0.1)
    out = {"bn.weight": bn.weight.detach().clone(), "bn.bias": bn.bias.detach().clone()}
    x1 = randn(4, 3, 5, 6, seed=32) * 2 + 1
    x2 = randn(2, 3, 5, 6, seed=33) - 0.5
    out.update({"bn.x1": x1, "bn.x2": x2})
    bn.train()
    out["bn.train.y1"] = bn(x1)
    out["bn.train.y2"] = bn(x2)
    out["bn.running_mean"] = bn.running_mean
    out["bn.running_var"] = bn.running_var
    out["bn.num_batches_tracked"] = bn.num_batches_tracked
    bn.eval()
    out["bn.eval.y1"] = bn(x1)
    return out


def layer_norm_and_conv_cases():
    out = {}
    ln = torch.nn.LayerNorm([4, 6], eps=1e-6)
    with torch.no_grad():
        ln.weight.copy_(randn(4, 6, seed=40))
        ln.bias.copy_(randn(4, 6, seed=41))
    x = randn(2, 3, 4, 6, seed=42)
    out.update({"ln.weight": ln.weight, "ln.bias": ln.bias, "ln.x": x, "ln.y": ln(x)})

    conv = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2)
    x = randn(2, 4, 7, 5, seed=50)
    out.update({"conv2d.weight": conv.weight, "conv2d.bias": conv.bias, "conv2d.x": x, "conv2d.y": conv(x)})
    conv1 = torch.nn.Conv1d(3, 5, 3, padding=2, dilation=2)
    x = randn(2, 3, 9, seed=51)
    out.update({"conv1d.weight": conv1.weight, "conv1d.bias": conv1.bias, "conv1d.x": x, "conv1d.y": conv1(x)})
    return out


def main():
    out = {}
    out.update(mha_cases())
    out.update(batch_norm_cases())
    out.update(layer_norm_and_conv_cases())
    save("nn", {k: v.detach() for k, v in out.items()})


if __name__ == "__main__":
    main()
