"""PyTorch definitions of the EEG encoders of models/eeg/, written to the same structure (and so
the same parameter names) as the C++ modules, and as the published code they follow:

- EEGProject:  the projector of the ATM / UBP code bases (flatten, Linear, residual GELU block,
  LayerNorm), parameters under "model.".
- TSConv:      NICE (Song et al., 2024), Enc_eeg + Proj_eeg, under "enc_eeg." and "proj_eeg.".
- ATMS:        ATM-S (Li et al., 2024): the iTransformer channel-token encoder under
  "encoder.", then NICE's TSConv stem and projector.
- EEGNet:      EEGNet-v4 (Lawhern et al., 2018) with braindecode's layer names, then a Linear.
- ShallowNet:  ShallowConvNet (Schirrmeister et al., 2017), braindecode's names, then a Linear.

Inputs are [N, C, T]. Also here: the deterministic numbers both sides use (splitmix64), so that
fixtures need not store large weights or batches.
"""
import math

import numpy as np
import torch
from torch import nn

# ---------------------------------------------------------------- shared deterministic numbers

MASK64 = (1 << 64) - 1


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h ^= byte
        h = (h * 0x100000001B3) & MASK64
    return h


def uniform_pm1(seed, n):
    """n numbers in [-1, 1), each exactly a float32: splitmix64 of (seed + (i + 1) * golden),
    top 24 bits. tests/models/test_eeg_support.h computes the same numbers."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)  # [0, 1), 24 bits
    return 2.0 * u - 1.0


def deterministic_tensor(seed, shape, scale=1.0, shift=0.0):
    n = int(np.prod(shape)) if len(shape) else 1
    values = shift + scale * uniform_pm1(seed, n)  # in float64, then rounded once
    return torch.from_numpy(values.astype(np.float32)).reshape(shape)


def fill_deterministic(module, base_seed):
    """Sets every parameter and floating buffer from its name (the rule of
    test_eeg_support.h): weights U(-1,1)/sqrt(fan_in), 1-D weights (norms) 1 + 0.1 U,
    biases 0.1 U, running_mean 0.2 U, running_var 1 + 0.5 U; 0-D tensors are left alone."""
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point() or t.dim() == 0:
                continue
            seed = base_seed ^ fnv1a64(name)
            if name.endswith("running_var"):
                value = deterministic_tensor(seed, t.shape, 0.5, 1.0)
            elif name.endswith("running_mean"):
                value = deterministic_tensor(seed, t.shape, 0.2)
            elif t.dim() >= 2:
                fan_in = t[0].numel()
                value = deterministic_tensor(seed, t.shape, 1.0 / math.sqrt(fan_in))
            elif name.endswith("weight"):
                value = deterministic_tensor(seed, t.shape, 0.1, 1.0)
            else:
                value = deterministic_tensor(seed, t.shape, 0.1)
            t.copy_(value)


def dropout_off(module):
    """Dropout layers to eval, everything else as it is (batch norm keeps batch statistics)."""
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.eval()


# ---------------------------------------------------------------- shared pieces


class ResidualAdd(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


def projection_head(in_dim, out_dim, dropout):
    """Linear, then x + Dropout(Linear(GELU(x))), then LayerNorm (NICE's Proj_eeg)."""
    return nn.Sequential(
        nn.Linear(in_dim, out_dim),
        ResidualAdd(nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim), nn.Dropout(dropout))),
        nn.LayerNorm(out_dim),
    )


class TokensLast(nn.Module):
    """einops' Rearrange('b e (h) (w) -> b (h w) e')."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


class PatchEmbedding(nn.Module):
    """NICE's TSConv stem: [N, 1, C, T] -> [N, positions, 40]."""

    def __init__(self, channels, emb_size=40):
        super().__init__()
        self.tsconv = nn.Sequential(
            nn.Conv2d(1, 40, (1, 25), (1, 1)),
            nn.AvgPool2d((1, 51), (1, 5)),
            nn.BatchNorm2d(40),
            nn.ELU(),
            nn.Conv2d(40, 40, (channels, 1), (1, 1)),
            nn.BatchNorm2d(40),
            nn.ELU(),
            nn.Dropout(0.5),
        )
        self.projection = nn.Sequential(nn.Conv2d(40, emb_size, (1, 1), stride=(1, 1)), TokensLast())

    def forward(self, x):
        return self.projection(self.tsconv(x.unsqueeze(1)))


class FlattenHead(nn.Module):
    def forward(self, x):
        return x.contiguous().view(x.size(0), -1)


def tsconv_positions(times):
    return ((times - 24) - 51) // 5 + 1


# ---------------------------------------------------------------- the encoders


class EEGProject(nn.Module):
    def __init__(self, channels, times, proj_dim=1024, drop_proj=0.3):
        super().__init__()
        self.input_dim = channels * times
        self.model = projection_head(self.input_dim, proj_dim, drop_proj)

    def forward(self, x):
        return self.model(x.reshape(x.shape[0], self.input_dim))


class TSConv(nn.Module):
    def __init__(self, channels, times, proj_dim=768, drop_proj=0.5):
        super().__init__()
        self.enc_eeg = nn.Sequential(PatchEmbedding(channels), FlattenHead())
        self.proj_eeg = projection_head(40 * tsconv_positions(times), proj_dim, drop_proj)

    def forward(self, x):
        return self.proj_eeg(self.enc_eeg(x))


class FullAttention(nn.Module):
    """Holds only the dropout on the attention probabilities (AttentionLayer does the rest)."""

    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)


class AttentionLayer(nn.Module):
    """Time-Series-Library's AttentionLayer with FullAttention: heads of d_model // n_heads."""

    def __init__(self, d_model, n_heads, dropout):
        super().__init__()
        d_keys = d_model // n_heads
        self.n_heads = n_heads
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_keys * n_heads)
        self.out_projection = nn.Linear(d_keys * n_heads, d_model)
        self.inner_attention = FullAttention(dropout)

    def forward(self, x):
        B, L, _ = x.shape
        H = self.n_heads
        q = self.query_projection(x).view(B, L, H, -1)
        k = self.key_projection(x).view(B, L, H, -1)
        v = self.value_projection(x).view(B, L, H, -1)
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = torch.einsum("blhe,bshe->bhls", q, k)
        a = self.inner_attention.dropout(torch.softmax(scale * scores, dim=-1))
        out = torch.einsum("bhls,bshd->blhd", a, v).reshape(B, L, -1)
        return self.out_projection(out)


class EncoderLayer(nn.Module):
    """Post-norm: x = norm1(x + attn(x)); norm2(x + conv2(gelu(conv1(x)))), 1x1 convolutions."""

    def __init__(self, d_model, n_heads, d_ff, dropout):
        super().__init__()
        self.attention = AttentionLayer(d_model, n_heads, dropout)
        self.conv1 = nn.Conv1d(d_model, d_ff, kernel_size=1)
        self.conv2 = nn.Conv1d(d_ff, d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.dropout(self.attention(x))
        y = x = self.norm1(x)
        y = self.dropout(torch.nn.functional.gelu(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        return self.norm2(x + y)


class Encoder(nn.Module):
    def __init__(self, layers, d_model):
        super().__init__()
        self.attn_layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.attn_layers:
            x = layer(x)
        return self.norm(x)


class DataEmbedding(nn.Module):
    """Each channel's time course -> d_model: the channels are the tokens."""

    def __init__(self, times, d_model, dropout):
        super().__init__()
        self.value_embedding = nn.Linear(times, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.value_embedding(x))


class ITransformer(nn.Module):
    def __init__(self, times, d_model, n_heads=4, d_ff=256, dropout=0.25, e_layers=1):
        super().__init__()
        self.enc_embedding = DataEmbedding(times, d_model, dropout)
        self.encoder = Encoder([EncoderLayer(d_model, n_heads, d_ff, dropout)
                                for _ in range(e_layers)], d_model)

    def forward(self, x):
        return self.encoder(self.enc_embedding(x))


class ATMS(nn.Module):
    def __init__(self, channels, times, proj_dim=1024, drop_proj=0.5):
        super().__init__()
        d_model = times  # ATM: d_model = seq_len = 250
        self.encoder = ITransformer(times, d_model)
        self.enc_eeg = nn.Sequential(PatchEmbedding(channels), FlattenHead())
        self.proj_eeg = projection_head(40 * tsconv_positions(d_model), proj_dim, drop_proj)

    def forward(self, x):
        return self.proj_eeg(self.enc_eeg(self.encoder(x)))


class EEGNet(nn.Module):
    """EEGNet-v4 as braindecode's EEGNetv4 (F1 8, D 2, F2 16, temporal kernel 64, padding
    kernel // 2, batch norm momentum 0.01 and eps 1e-3 as Keras), ending in a Linear."""

    def __init__(self, channels, times, embed_dim=1024, F1=8, D=2, F2=16, kernel_length=64,
                 drop_prob=0.25):
        super().__init__()
        bn = dict(momentum=0.01, affine=True, eps=1e-3)
        self.conv_temporal = nn.Conv2d(1, F1, (1, kernel_length), bias=False,
                                       padding=(0, kernel_length // 2))
        self.bnorm_temporal = nn.BatchNorm2d(F1, **bn)
        self.conv_spatial = nn.Conv2d(F1, F1 * D, (channels, 1), groups=F1, bias=False)
        self.bnorm_1 = nn.BatchNorm2d(F1 * D, **bn)
        self.elu_1 = nn.ELU()
        self.pool_1 = nn.AvgPool2d((1, 4), (1, 4))
        self.drop_1 = nn.Dropout(drop_prob)
        self.conv_separable_depth = nn.Conv2d(F1 * D, F1 * D, (1, 16), bias=False,
                                              groups=F1 * D, padding=(0, 8))
        self.conv_separable_point = nn.Conv2d(F1 * D, F2, (1, 1), bias=False)
        self.bnorm_2 = nn.BatchNorm2d(F2, **bn)
        self.elu_2 = nn.ELU()
        self.pool_2 = nn.AvgPool2d((1, 8), (1, 8))
        self.drop_2 = nn.Dropout(drop_prob)
        t = times + 2 * (kernel_length // 2) - kernel_length + 1
        t = (t // 4) + 2 * 8 - 16 + 1
        self.head = nn.Linear(F2 * (t // 8), embed_dim)

    def forward(self, x):
        x = self.bnorm_temporal(self.conv_temporal(x.unsqueeze(1)))
        x = self.drop_1(self.pool_1(self.elu_1(self.bnorm_1(self.conv_spatial(x)))))
        x = self.conv_separable_point(self.conv_separable_depth(x))
        x = self.drop_2(self.pool_2(self.elu_2(self.bnorm_2(x))))
        return self.head(x.flatten(1))


class ShallowNet(nn.Module):
    """ShallowConvNet as braindecode's ShallowFBCSPNet (40 filters, temporal kernel 25, pool 75
    stride 15, square then log), in [N, 1, C, T] layout, ending in a Linear."""

    def __init__(self, channels, times, embed_dim=1024, n_filters=40, drop_prob=0.5):
        super().__init__()
        self.conv_time = nn.Conv2d(1, n_filters, (1, 25))
        self.conv_spat = nn.Conv2d(n_filters, n_filters, (channels, 1), bias=False)
        self.bnorm = nn.BatchNorm2d(n_filters, momentum=0.1, affine=True, eps=1e-5)
        self.pool = nn.AvgPool2d((1, 75), (1, 15))
        self.drop = nn.Dropout(drop_prob)
        self.head = nn.Linear(n_filters * ((times - 24 - 75) // 15 + 1), embed_dim)

    def forward(self, x):
        x = self.bnorm(self.conv_spat(self.conv_time(x.unsqueeze(1))))
        x = torch.log(torch.clamp(self.pool(x * x), min=1e-6))
        return self.head(self.drop(x).flatten(1))


ENCODERS = {"eegproject": EEGProject, "tsconv": TSConv, "atms": ATMS, "eegnet": EEGNet,
            "shallownet": ShallowNet}


def make_encoder(name, channels, times, embed_dim=None):
    cls = ENCODERS[name]
    return cls(channels, times) if embed_dim is None else cls(channels, times, embed_dim)


class ContrastiveHead(nn.Module):
    """models/contrastive.h: Linear per modality, L2 normalization, exp(logit_scale) with
    logit_scale = log(1 / 0.07) at start, symmetric InfoNCE."""

    def __init__(self, eeg_dim, image_dim, shared_dim=1024, init_temperature=0.07):
        super().__init__()
        self.eeg_proj = nn.Linear(eeg_dim, shared_dim)
        self.image_proj = nn.Linear(image_dim, shared_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def embed_eeg(self, x):
        return nn.functional.normalize(self.eeg_proj(x), dim=-1)

    def embed_image(self, x):
        return nn.functional.normalize(self.image_proj(x), dim=-1)

    def loss(self, eeg, image):
        logits = self.logit_scale.exp() * eeg @ image.t()
        labels = torch.arange(eeg.shape[0], device=eeg.device)
        return 0.5 * (nn.functional.cross_entropy(logits, labels) +
                      nn.functional.cross_entropy(logits.t(), labels))


if __name__ == "__main__":
    pass  # definitions only; eeg_encoders.py and eeg_parity.py make the fixtures
