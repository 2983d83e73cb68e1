"""Fixtures for tests/models/test_preprocess.cpp: OpenCLIP's image transform, run by PIL and
torchvision themselves, on the committed images in tests/fixtures/images/.

    python3 preprocess.py                       # expected outputs from the committed images
    python3 preprocess.py --make-images [DIR]   # first remake the committed images from
                                                # scikit-image's sample photographs (DIR: its data folder)

Writes, for every case, PIL's RGB crop before ToTensor (what OpenCLIP hands to ToTensor) as a
PNG in tests/fixtures/images/expected/, and into tests/fixtures/preprocess.safetensors the
normalized tensors of a few cases as OpenCLIP's own `image_transform` (and DINOv2's transform)
returns them, plus the list of cases as metadata.
Needs: pip install pillow torchvision open_clip_torch (open_clip optional: without it the same
Compose is built from torchvision).
"""
import json
import pathlib
import sys
import warnings

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from common import FIXTURES, save

IMAGES = FIXTURES / "images"
EXPECTED = IMAGES / "expected"

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (case name, committed image, resize size, crop size). The photographs run at CLIP's 224; the
# cases about modes run at smaller sizes to keep the expected files small (the code path is the
# same). Sizes were chosen so that some crop offsets are x.5 and Python rounds them to even.
CASES = [
    ("rocket_portrait_jpeg", "rocket_portrait.jpg", 224, 224),   # 240x347, shrunk; offset 49.5 -> 50
    ("chelsea_landscape_jpeg", "chelsea_small.jpg", 224, 224),   # 157x100, enlarged; offset 63.5 -> 64
    ("coffee_rgb_png", "coffee.png", 224, 224),                  # 232x226, shrunk a little
    ("camera_gray_png", "camera_gray.png", 224, 224),            # L, 300x240, shrunk
    ("astronaut_portrait_png", "astronaut_small.png", 96, 96),   # 130x160, shrunk
    ("astronaut_enlarged_png", "astronaut_small.png", 150, 150), # 130x160, enlarged
    ("camera_gray_jpeg", "camera_gray.jpg", 80, 80),             # L JPEG, portrait
    ("chelsea_palette_png", "chelsea_palette.png", 97, 97),      # P: resized by nearest neighbour
    ("chelsea_palette_trns_png", "palette_trns.png", 64, 64),    # P with a tRNS chunk
    ("chelsea_rgba_png", "chelsea_rgba.png", 90, 90),            # RGBA, transparent corners
    ("noise_rgba_png", "noise_rgba.png", 64, 64),                # RGBA noise, every alpha value
    ("camera_la_png", "camera_la.png", 72, 72),                  # LA
    ("camera_gray16_png", "camera_gray16.png", 64, 64),          # I;16, values above 255 clip
    ("astronaut_rgb16_png", "astronaut_rgb16.png", 64, 64),      # 16-bit RGB: high bytes
    ("camera_la16_png", "camera_la16.png", 64, 64),              # 16-bit LA: PIL opens it as RGBA
    ("camera_bilevel_png", "camera_bilevel.png", 70, 70),        # "1": nearest neighbour
    ("camera_gray_trns_png", "camera_gray_trns.png", 64, 64),    # L with tRNS: stays L in PIL
    ("horse_rgba_dinov2", "horse.png", 256, 224),                # DINOv2's resize 256, crop 224
    ("chelsea_cmyk_jpeg", "chelsea_cmyk.jpg", 80, 80),           # CMYK: resized in CMYK, then RGB
]

# Cases whose normalized tensor is saved, made by the reference transforms themselves at a small
# size: (key, image, resize, crop, mean, std).
NORMALIZED = [
    ("openclip.rocket_portrait_jpeg", "rocket_portrait.jpg", 48, 48, CLIP_MEAN, CLIP_STD),
    ("openclip.chelsea_rgba_png", "chelsea_rgba.png", 48, 48, CLIP_MEAN, CLIP_STD),
    ("openclip.chelsea_palette_png", "chelsea_palette.png", 48, 48, CLIP_MEAN, CLIP_STD),
    ("dinov2.coffee_rgb_png", "coffee.png", 55, 48, IMAGENET_MEAN, IMAGENET_STD),
]


def reference_transform(resize, crop, mean, std):
    """OpenCLIP's eval transform when resize == crop (from open_clip itself when installed);
    otherwise DINOv2's: the same steps with a larger resize."""
    if resize == crop:
        try:
            import open_clip
            return open_clip.image_transform(crop, is_train=False, mean=mean, std=std)
        except ImportError:
            pass
    return T.Compose([
        T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(crop),
        lambda image: image.convert("RGB"),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


def rgb_crop(image, resize, crop):
    """The transform up to (not including) ToTensor: PIL's RGB crop, as uint8."""
    steps = reference_transform(resize, crop, CLIP_MEAN, CLIP_STD).transforms
    for step in steps[:-2]:  # drop ToTensor and Normalize
        image = step(image)
    assert image.mode == "RGB" and image.size == (crop, crop), (image.mode, image.size)
    return image


def make_images(data_dir):
    """The committed images: small crops of scikit-image's photographs, a few tens of KB each,
    plus images in every mode PIL treats apart, made from those photographs."""
    data = pathlib.Path(data_dir)
    IMAGES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rocket = Image.open(data / "rocket.jpg").convert("RGB")
    chelsea = Image.open(data / "chelsea.png").convert("RGB")
    coffee = Image.open(data / "coffee.png").convert("RGB")
    astronaut = Image.open(data / "astronaut.png").convert("RGB")
    camera = Image.open(data / "camera.png").convert("L")

    rocket.crop((200, 40, 440, 387)).save(IMAGES / "rocket_portrait.jpg", quality=85)
    chelsea.resize((157, 100), Image.LANCZOS).save(IMAGES / "chelsea_small.jpg", quality=90)
    coffee.crop((120, 60, 352, 286)).save(IMAGES / "coffee.png", optimize=True)
    camera.crop((100, 30, 400, 270)).save(IMAGES / "camera_gray.png", optimize=True)
    camera.crop((150, 20, 350, 270)).resize((110, 137), Image.LANCZOS).save(
        IMAGES / "camera_gray.jpg", quality=90)
    astronaut_small = astronaut.crop((100, 0, 404, 374)).resize((130, 160), Image.LANCZOS)
    astronaut_small.save(IMAGES / "astronaut_small.png", optimize=True)

    chelsea.crop((60, 20, 340, 220)).quantize(64).save(IMAGES / "chelsea_palette.png", optimize=True)
    palette = chelsea.resize((45, 30), Image.LANCZOS).quantize(16)
    palette.save(IMAGES / "palette_trns.png", transparency=bytes([0, 128] + [255] * 14))

    # RGBA: a photograph inside a soft-edged ellipse, fully transparent (with color) outside.
    rgba = chelsea.crop((120, 40, 330, 250)).resize((105, 105), Image.LANCZOS).convert("RGBA")
    y, x = np.mgrid[0:105, 0:105]
    r = np.sqrt(((x - 52) / 50.0) ** 2 + ((y - 52) / 44.0) ** 2)
    alpha = np.clip((1.1 - r) * 600, 0, 255).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(IMAGES / "chelsea_rgba.png")

    noise = rng.integers(0, 256, size=(23, 31, 4), dtype=np.uint8)
    noise[::5, :, 3] = 0
    noise[1::5, :, 3] = 255
    Image.fromarray(noise, "RGBA").save(IMAGES / "noise_rgba.png")

    small_camera = camera.crop((180, 40, 340, 200)).resize((48, 48), Image.LANCZOS)
    gray = np.asarray(small_camera)
    la_alpha = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (48, 1))
    Image.fromarray(np.dstack([gray, la_alpha]), "LA").save(IMAGES / "camera_la.png")
    # 16-bit gray spanning 0..765: PIL resizes it in 16 bits, then clips to 255 converting to RGB.
    save_png16(IMAGES / "camera_gray16.png", gray.astype(np.uint16) * 3, color_type=0)
    # 16-bit RGB and gray+alpha with noise in the low bytes, which both PIL and stb drop.
    astro16 = np.asarray(astronaut.resize((40, 50), Image.LANCZOS)).astype(np.uint16) * 257
    astro16 ^= rng.integers(0, 256, size=astro16.shape, dtype=np.uint16)
    save_png16(IMAGES / "astronaut_rgb16.png", astro16, color_type=2)
    la16 = np.dstack([gray.astype(np.uint16) * 257, la_alpha.astype(np.uint16) * 257])
    save_png16(IMAGES / "camera_la16.png", la16 ^ rng.integers(0, 256, la16.shape, dtype=np.uint16),
               color_type=4)
    small_camera.point(lambda v: 255 if v > 100 else 0).convert("1").save(
        IMAGES / "camera_bilevel.png")
    small_camera.save(IMAGES / "camera_gray_trns.png", transparency=int(gray[0, 0]))
    make_cmyk_image()
    # horse.png is already small (400x328 RGBA) and comes with scikit-image as it is.
    Image.open(data / "horse.png").save(IMAGES / "horse.png", optimize=True)


def make_cmyk_image():
    """A CMYK JPEG (as print workflows save them; PIL writes Adobe's inverted convention), made
    from a committed photograph so that it needs no download."""
    Image.open(IMAGES / "chelsea_small.jpg").convert("CMYK").save(IMAGES / "chelsea_cmyk.jpg",
                                                                  quality=90)


def save_png16(path, samples, color_type):
    """A 16-bit PNG written by hand (PIL writes neither 16-bit RGB nor gray+alpha)."""
    import struct
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    h, w = samples.shape[:2]
    rows = samples.astype(">u2").reshape(h, -1).tobytes()
    stride = len(rows) // h
    raw = b"".join(b"\x00" + rows[i * stride:(i + 1) * stride] for i in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    pathlib.Path(path).write_bytes(png)


def main():
    # PIL warns that it ignores a palette's tRNS when converting to RGB; ignoring it is the point.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    if "--make-images" in sys.argv:
        rest = sys.argv[sys.argv.index("--make-images") + 1:]
        data_dir = rest[0] if rest else None
        if data_dir is None:
            import skimage  # scikit-image's sample photographs
            data_dir = pathlib.Path(skimage.__file__).parent / "data"
        make_images(data_dir)

    if not (IMAGES / "chelsea_cmyk.jpg").exists():
        make_cmyk_image()
    EXPECTED.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, image_name, resize, crop in CASES:
        image = Image.open(IMAGES / image_name)
        mode, size = image.mode, image.size
        rgb_crop(image, resize, crop).save(EXPECTED / f"{name}.png", optimize=True)
        cases.append(dict(name=name, image=image_name, resize=resize, crop=crop, mode=mode,
                          width=size[0], height=size[1]))
        print(f"{name}: {image_name} {mode} {size[0]}x{size[1]} -> {crop}")

    tensors = {}
    for key, image_name, resize, crop, mean, std in NORMALIZED:
        image = Image.open(IMAGES / image_name)
        tensors[key] = reference_transform(resize, crop, mean, std)(image).to(torch.float32)
    try:
        import open_clip
        source = f"open_clip {open_clip.__version__}"
    except ImportError:
        source = "torchvision Compose"
    import PIL
    import torchvision
    save("preprocess", tensors, metadata={
        "cases": json.dumps(cases),
        "normalized": json.dumps([dict(key=k, image=i, resize=r, crop=c, mean=m, std=s)
                                  for k, i, r, c, m, s in NORMALIZED]),
        "pillow": PIL.__version__, "torchvision": torchvision.__version__, "transform": source,
    })


if __name__ == "__main__":
    main()
