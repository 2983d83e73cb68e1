"""Fixtures for engine/ops/indexing.h: concat, stack, split, index_select, gather, embedding,
where and masked_fill, with the gradients PyTorch gives for sum(out * w)."""
import torch

from common import randn, save

t = {}


def grads(name, out, inputs, seed):
    """Stores w and the gradient of sum(out * w) with respect to each named input."""
    w = randn(*out.shape, seed=seed)
    (out * w).sum().backward()
    t[f"{name}.w"] = w
    for key, x in inputs.items():
        t[f"{name}.grad_{key}"] = x.grad


def leaf(*shape, seed):
    return randn(*shape, seed=seed).requires_grad_()


# concat: unequal sizes along a middle dim; a transposed (non-contiguous) first input.
a, b, c = leaf(2, 3, 4, seed=1), leaf(2, 1, 4, seed=2), leaf(2, 2, 4, seed=3)
t.update({"concat.a": a, "concat.b": b, "concat.c": c, "concat.out": torch.cat([a, b, c], 1)})
t["concat.out_last"] = torch.cat([a, a], -1)
p, q = randn(4, 2, seed=4), randn(3, 4, seed=5)
t.update({"concat_t.p": p, "concat_t.q": q, "concat_t.out": torch.cat([p.t(), q], 0)})

# stack at the front, the middle and the end.
s0, s1 = randn(3, 4, seed=6), randn(3, 4, seed=7)
t.update({"stack.a": s0, "stack.b": s1})
for d in (0, 1, 2, -1):
    t[f"stack.out{d}"] = torch.stack([s0, s1, s0], d)

# split by size (the last piece smaller) and by sizes.
x = randn(5, 6, seed=8)
t["split.x"] = x
for i, piece in enumerate(torch.split(x, 2, 0)):
    t[f"split.size2_{i}"] = piece
for i, piece in enumerate(torch.split(x, [1, 3, 2], 1)):
    t[f"split.sizes_{i}"] = piece

# index_select with repeated indices, along each dim; i64 and i32 indices.
x = leaf(5, 3, 4, seed=9)
idx = torch.tensor([2, 0, 2, 1, 2])
out = torch.index_select(x, 1, idx[:4] % 3)
t.update({"index_select.x": x, "index_select.idx1": idx[:4] % 3, "index_select.out1": out})
grads("index_select", out, {"x": x}, 10)
t["index_select.idx0"] = torch.tensor([4, 4, 0, 3], dtype=torch.int32)
t["index_select.out0"] = torch.index_select(x, 0, t["index_select.idx0"])
t["index_select.idx2"] = torch.tensor([3, 0, 3])
t["index_select.out2"] = torch.index_select(x, -1, t["index_select.idx2"])

# gather along dim 1 and dim 0, an index smaller than the input in the other dims, 3-D.
x = leaf(3, 5, seed=11)
g = torch.randint(0, 5, (3, 4), generator=torch.Generator().manual_seed(12))
out = torch.gather(x, 1, g)
t.update({"gather.x": x, "gather.idx1": g, "gather.out1": out})
grads("gather", out, {"x": x}, 13)
g0 = torch.randint(0, 3, (4, 2), generator=torch.Generator().manual_seed(14))
t.update({"gather.idx0": g0, "gather.out0": torch.gather(x.detach(), 0, g0)})
x3 = leaf(2, 4, 3, seed=15)
g3 = torch.randint(0, 4, (2, 6, 2), generator=torch.Generator().manual_seed(16))
out = torch.gather(x3, 1, g3)
t.update({"gather3.x": x3, "gather3.idx": g3, "gather3.out": out})
grads("gather3", out, {"x": x3}, 17)

# embedding with repeated rows and 2-D indices.
w = leaf(10, 4, seed=18)
ids = torch.tensor([[1, 7, 1], [0, 9, 1]])
out = torch.nn.functional.embedding(ids, w)
t.update({"embedding.weight": w, "embedding.ids": ids, "embedding.out": out})
grads("embedding", out, {"weight": w}, 19)

# where: u8 condition broadcast against a and b; a float condition with -0.0 (false) and NaN (true).
cond = torch.tensor([[1], [0], [1]], dtype=torch.uint8)
a, b = leaf(1, 4, seed=20), leaf(3, 4, seed=21)
out = torch.where(cond.bool(), a, b)
t.update({"where.cond": cond, "where.a": a, "where.b": b, "where.out": out})
grads("where", out, {"a": a, "b": b}, 22)
fcond = torch.tensor([0.0, -0.0, 2.5, float("nan"), -1.0, 0.0])
a, b = randn(6, seed=23), randn(2, 6, seed=24)
t.update({"where_f.cond": fcond, "where_f.a": a, "where_f.b": b,
          "where_f.out": torch.where(fcond != 0, a, b)})

# masked_fill with a mask broadcast to x, by a finite value and by -inf.
x = leaf(2, 3, 4, seed=25)
mask = torch.tensor([[1], [0], [1]], dtype=torch.uint8)
out = x.masked_fill(mask.bool(), -1e4)
t.update({"masked_fill.x": x, "masked_fill.mask": mask, "masked_fill.out": out})
grads("masked_fill", out, {"x": x}, 26)
t["masked_fill.out_inf"] = x.detach().masked_fill(mask.bool(), float("-inf"))

save("ops_indexing", t)
