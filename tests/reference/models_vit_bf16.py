"""The small HF CLIP ViT of tests/fixtures/models/hf_clip (made by models_fixtures.py) run by
transformers in bf16 throughout (model.to(torch.bfloat16), no autocast), on the same images: every
layer's tokens and the final embedding, for the bf16 ViT test (tests/models/test_vit_bf16.cpp).
Run models_fixtures.py first."""
import pathlib

import torch
from safetensors.torch import load_file
from transformers import CLIPVisionModelWithProjection

from common import save

d = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "models" / "hf_clip"
model = CLIPVisionModelWithProjection.from_pretrained(d).eval().to(torch.bfloat16)
x = load_file(str(d / "expected.safetensors"))["images"].float().to(torch.bfloat16)
with torch.no_grad():
    out = model(pixel_values=x, output_hidden_states=True)
t = {f"layer_{i}": h for i, h in enumerate(out.hidden_states)}
t["final"] = out.image_embeds
save("models_vit_bf16", t, metadata={"attn_implementation": str(model.config._attn_implementation)})
