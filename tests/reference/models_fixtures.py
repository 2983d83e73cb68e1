"""Vision backbones on small random configs, as the reference libraries build and save them.

For each family this writes, under tests/fixtures/models/<case>/:
  - the library's own weights file (and config file where the library writes one), exactly as
    a user would download it: HF save_pretrained (safetensors + config.json), an OpenCLIP
    checkpoint (torch.save of the state dict, `visual.` prefix), timm's state dict (.pth and
    .safetensors), an OpenCLIP training checkpoint ({"epoch", "state_dict"} with DDP's `module.`);
  - expected.safetensors: the input images and the library's own forward: every layer's tokens
    (layer_0 .. layer_L, numbered as DESIGN.md) and the final embedding (`final`).
Weights are drawn at a scale where every block changes the residual stream (the libraries'
initializations are too small to catch a wrong block), then saved and reloaded by the library.
A file of position-grid resizings (interpolate.safetensors) checks the three F.interpolate calls
of the DINOv2 implementations.
"""
import json
import pathlib
import shutil

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.set_grad_enabled(False)
ROOT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "models"


def randomize(module, seed):
    """Redraws every parameter and batch-norm buffer at a scale where each layer matters."""
    g = torch.Generator().manual_seed(seed)
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "running_var":
            new = 0.5 + torch.rand(t.shape, generator=g)
        elif leaf == "running_mean":
            new = 0.2 * torch.randn(t.shape, generator=g)
        elif t.dim() == 4 or (t.dim() >= 2 and not any(k in name for k in ("embed", "token"))):
            fan_in = t[0].numel()
            new = torch.randn(t.shape, generator=g) * (1.5 / fan_in ** 0.5)
        elif leaf in ("gamma", "lambda1") or "ls" in leaf:
            new = 0.5 + torch.rand(t.shape, generator=g)  # layer scale
        elif leaf == "weight" and t.dim() == 1:
            new = 1.0 + 0.2 * torch.randn(t.shape, generator=g)  # norm scales
        else:
            new = 0.3 * torch.randn(t.shape, generator=g)  # biases, tokens, position embeddings
        t.copy_(new.to(t.dtype))


def images(n, size, seed):
    """Normalized-looking pixels, rounded to half precision so that they are stored in half."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g).half().float()


def fresh_dir(case):
    d = ROOT / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def save_expected(d, x, layers, final, meta=None):
    out = {"images": x, "final": final}
    for i, t in enumerate(layers):
        out[f"layer_{i}"] = t
    out = {k: v.detach().float().contiguous() for k, v in out.items()}
    out["images"] = out["images"].half()
    save_file(out, str(d / "expected.safetensors"),
              metadata={k: str(v) for k, v in (meta or {}).items()})
    total = sum(f.stat().st_size for f in d.iterdir())
    worst = max(float(v.abs().max()) for v in out.values())
    print(f"{d.name}: {len(layers)} layers, final {tuple(final.shape)}, |values| <= {worst:.2f}, "
          f"{total} bytes")


def capture(modules):
    """Forward hooks that collect each module's output, in call order."""
    seen = []
    handles = [m.register_forward_hook(lambda _m, _i, o: seen.append(o)) for m in modules]
    return seen, handles


# ---------------------------------------------------------------- HF CLIP (quick_gelu)

def hf_clip():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    d = fresh_dir("hf_clip")
    cfg = CLIPVisionConfig(hidden_size=16, intermediate_size=40, num_hidden_layers=3,
                           num_attention_heads=2, image_size=16, patch_size=4, projection_dim=12,
                           hidden_act="quick_gelu", layer_norm_eps=1e-5)
    model = CLIPVisionModelWithProjection(cfg).eval()
    randomize(model, 1)
    model.save_pretrained(d, safe_serialization=True)
    model = CLIPVisionModelWithProjection.from_pretrained(d).eval()
    x = images(2, 16, 11)
    out = model(pixel_values=x, output_hidden_states=True)
    save_expected(d, x, out.hidden_states, out.image_embeds)


# ---------------------------------------------------------------- OpenCLIP ViT (gelu)

def openclip_vit():
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    d = fresh_dir("openclip_vit")
    vcfg = dict(layers=3, width=16, head_width=8, mlp_ratio=2.5, patch_size=4, image_size=16)
    visual = _build_vision_tower(12, CLIPVisionCfg(**vcfg), quick_gelu=False).eval()
    randomize(visual, 2)
    state = {"visual." + k: v for k, v in visual.state_dict().items()}
    state["logit_scale"] = torch.tensor(4.6052)  # a full CLIP checkpoint also holds this
    torch.save(state, d / "open_clip_pytorch_model.bin")
    # The config file OpenCLIP's hub repositories ship beside the weights.
    (d / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": {"embed_dim": 12, "vision_cfg": vcfg},
         "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                            "std": [0.26862954, 0.26130258, 0.27577711]}}, indent=2))
    visual.load_state_dict({k[len("visual."):]: v for k, v in
                            torch.load(d / "open_clip_pytorch_model.bin").items()
                            if k.startswith("visual.")})
    x = images(2, 16, 12)
    seen, _ = capture([visual.ln_pre] + list(visual.transformer.resblocks))
    final = visual(x)
    tokens = [t if t.shape[0] == 2 else t.permute(1, 0, 2) for t in seen]  # [N, T, D]
    save_expected(d, x, tokens, final)


# ---------------------------------------------------------------- timm ViT

def timm_vit(case, seed, **kwargs):
    from timm.models.vision_transformer import VisionTransformer
    d = fresh_dir(case)
    model = VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=3, num_heads=2,
                              mlp_ratio=2.5, num_classes=5, **kwargs).eval()
    randomize(model, seed)
    x = images(2, 16, seed + 10)
    seen, _ = capture([model.norm_pre] + list(model.blocks))
    final = model.forward_head(model.forward_features(x), pre_logits=True)
    return d, model, x, seen, final


def timm_token():
    d, model, x, seen, final = timm_vit("timm_vit", 3)
    torch.save(model.state_dict(), d / "model.pth")
    save_expected(d, x, seen, final)


def timm_avg():
    d, model, x, seen, final = timm_vit("timm_vit_avg", 4, class_token=False, global_pool="avg")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(d / "model.safetensors"))
    save_expected(d, x, seen, final)


# ---------------------------------------------------------------- HF DINOv2 (+ registers)

def hf_dinov2(case, seed, registers):
    import transformers
    d = fresh_dir(case)
    common = dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, mlp_ratio=3,
                  image_size=28, patch_size=4, layerscale_value=1.0, layer_norm_eps=1e-6)
    if registers:
        cfg = transformers.Dinov2WithRegistersConfig(num_register_tokens=2, **common)
        cls = transformers.Dinov2WithRegistersModel
    else:
        cfg = transformers.Dinov2Config(**common)
        cls = transformers.Dinov2Model
    model = cls(cfg).eval()
    randomize(model, seed)
    model.save_pretrained(d, safe_serialization=True)
    model = cls.from_pretrained(d).eval()
    # Stored grid 7 x 7 (28 px); the input is 16 px: a 4 x 4 grid, so the position embedding
    # is resized as the library resizes it.
    x = images(2, 16, seed + 10)
    out = model(pixel_values=x, output_hidden_states=True)
    save_expected(d, x, out.hidden_states, out.pooler_output)


# ---------------------------------------------------------------- OpenCLIP ModifiedResNet

def openclip_resnet():
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    d = fresh_dir("openclip_resnet")
    vcfg = dict(layers=[1, 2, 1, 1], width=2, head_width=32, image_size=64)
    visual = _build_vision_tower(24, CLIPVisionCfg(**vcfg)).eval()
    randomize(visual, 5)
    # Stored in half precision to keep the fixture small; the reference runs in float32 on the
    # same (half-representable) values.
    for t in visual.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.half().float())
    state = {"module.visual." + k: (v.half() if v.is_floating_point() else v)
             for k, v in visual.state_dict().items()}
    torch.save({"epoch": 7, "name": "tiny-rn", "state_dict": state}, d / "epoch_7.pt")
    (d / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": {"embed_dim": 24, "vision_cfg": vcfg}}, indent=2))
    x = images(2, 64, 15)
    seen, _ = capture([visual.layer1, visual.layer2, visual.layer3, visual.layer4])
    final = visual(x)
    # No layer 0 for a ResNet: the stages are layers 1..4.
    out = {"images": x.half(), "final": final}
    for i, t in enumerate(seen):
        out[f"layer_{i + 1}"] = t
    save_file({k: v.contiguous() for k, v in out.items()}, str(d / "expected.safetensors"))
    total = sum(f.stat().st_size for f in d.iterdir())
    print(f"{d.name}: stages {[tuple(t.shape) for t in seen]}, final {tuple(final.shape)}, "
          f"{total} bytes")


# ---------------------------------------------------------------- position-grid resizing

def interpolations():
    g = torch.Generator().manual_seed(6)
    grid = torch.randn(1, 5, 7, 7, generator=g)  # [1, D, M, M] as the DINOv2 code holds it
    out = {"grid": grid[0].permute(1, 2, 0).contiguous()}  # [M, M, D] as our helper takes it
    for (oh, ow) in [(4, 4), (10, 10), (5, 9), (7, 7), (16, 16)]:
        plain = F.interpolate(grid, size=(oh, ow), mode="bicubic", align_corners=False)
        aa = F.interpolate(grid, size=(oh, ow), mode="bicubic", align_corners=False,
                           antialias=True)
        out[f"bicubic_{oh}x{ow}"] = plain[0].permute(1, 2, 0).contiguous()
        out[f"antialias_{oh}x{ow}"] = aa[0].permute(1, 2, 0).contiguous()
        # DINOv2's own call: a scale factor of (out + 0.1) / M per axis.
        sf = F.interpolate(grid, scale_factor=((oh + 0.1) / 7, (ow + 0.1) / 7), mode="bicubic")
        assert sf.shape[-2:] == (oh, ow)
        out[f"scale_offset_{oh}x{ow}"] = sf[0].permute(1, 2, 0).contiguous()
    ROOT.mkdir(parents=True, exist_ok=True)
    save_file(out, str(ROOT / "interpolate.safetensors"))
    print(f"interpolate: {len(out)} tensors, {(ROOT / 'interpolate.safetensors').stat().st_size} bytes")


if __name__ == "__main__":
    hf_clip()
    openclip_vit()
    timm_token()
    timm_avg()
    hf_dinov2("hf_dinov2", 7, registers=False)
    hf_dinov2("hf_dinov2_registers", 8, registers=True)
    openclip_resnet()
    interpolations()
