"""Fixtures for dtype conversion: f32 -> bf16/f16 with PyTorch's rounding (ties to even,
subnormals, overflow, infinities, NaN), f64 -> bf16/f16, and bf16/f16 -> f32."""
import struct

import torch

from common import randn, save


def f32_from_bits(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


t = {}
g = torch.Generator().manual_seed(1)

# Random magnitudes over most of f32's range.
scales = torch.pow(2.0, torch.randint(-40, 41, (256,), generator=g).double())
values = [randn(256, seed=2, dtype=torch.float64) * scales]

# Exact ties and their neighbours for bf16: low 16 bits 0x8000, 0x8001, 0x7fff, on odd and even.
hi = torch.randint(0x0080, 0x7f00, (64,), generator=g)
hi = torch.cat([hi, hi | 1, hi & ~1])
for low in (0x8000, 0x8001, 0x7FFF):
    for sign in (0, 0x80000000):
        bits = (hi.long() << 16) | low | sign
        values.append(f32_from_bits([b - (1 << 32) if b >= 1 << 31 else b for b in bits.tolist()]).double())

# Ties and neighbours for f16: normals (half an f16 ulp is 1 << 12 in f32 bits) and subnormals.
h = torch.randint(0x0400, 0x7BFF, (96,), generator=g).to(torch.int16).view(torch.float16).float()
hb = h.view(torch.int32)
for delta in (1 << 12, (1 << 12) + 1, (1 << 12) - 1):
    values.append((hb + delta).view(torch.float32).double())
k = torch.arange(0, 1024, 37).double()
values.append((k + 0.5) * 2.0 ** -24)          # subnormal ties
values.append((k + 0.5 + 2.0 ** -10) * 2.0 ** -24)
values.append((k + 0.5 - 2.0 ** -10) * 2.0 ** -24)

specials = [0.0, -0.0, float("inf"), float("-inf"), float("nan"),
            65504.0, 65519.0, 65519.99, 65520.0, 65536.0, 1e5, -1e5, 70000.0,
            2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 2.0 ** -26,
            3.3895313892515355e38, 3.4028234663852886e38, -3.4028234663852886e38,
            1.1754943508222875e-38, 1e-40, -1e-40, 1.401298464324817e-45, 9.18e-41,
            1.0, -1.0, 0.1, 1.0 / 3.0, 3.14159265, 1.00390625, 1.01171875]
values.append(torch.tensor(specials, dtype=torch.float64))
x = torch.cat(values).float()
t["f32.x"] = x
t["f32.to_bf16"], t["f32.to_f16"] = x.to(torch.bfloat16), x.to(torch.float16)

# f64 values: PyTorch's rounding of a double to bf16/f16, including values a hair off a tie.
d = torch.tensor([1.0 + 2 ** -8 + 2 ** -40, 1.0 + 2 ** -8 - 2 ** -40, 1.0 + 2 ** -11 + 2 ** -40,
                  1.0 + 2 ** -11 - 2 ** -40, 1e-300, 1e300, -2.5, 0.1, 65519.999999], dtype=torch.float64)
d = torch.cat([d, randn(64, seed=3, dtype=torch.float64) * 100])
t["f64.x"], t["f64.to_bf16"], t["f64.to_f16"] = d, d.to(torch.bfloat16), d.to(torch.float16)

# bf16/f16 -> f32 on sampled bit patterns (every pattern is checked in C++ against ldexp).
pat = torch.randint(-32768, 32768, (512,), generator=g).to(torch.int16)
t["half.bf16"], t["half.f16"] = pat.view(torch.bfloat16), pat.view(torch.float16)
t["half.bf16_to_f32"], t["half.f16_to_f32"] = pat.view(torch.bfloat16).float(), pat.view(torch.float16).float()

save("ops_dtype", t)
