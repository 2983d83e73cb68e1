"""Files written by the real libraries, for the weights_import readers.

Every tensor or array named after a dtype holds pattern(i) for its flat C-order index i, so the
C++ tests recompute the expected values exactly; `random*` values are compared across formats
through expected.safetensors. Writes tests/fixtures/weights/.
"""
import os
import pathlib
import pickle
from collections import OrderedDict

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "weights"


def pattern_values(n, kind):
    """The values the C++ tests recompute: floats on a quarter grid, ints, unsigned, bools."""
    k = (np.arange(n, dtype=np.int64) * 7919) % 201
    if kind == "f":
        return (k - 100) / 4.0
    if kind == "i":
        return k - 100
    if kind == "u":
        return k
    return (np.arange(n, dtype=np.int64) * 7919) % 3 == 0


NUMPY_KINDS = {"f2": "f", "f4": "f", "f8": "f", "i1": "i", "i2": "i", "i4": "i", "i8": "i",
               "u1": "u", "u2": "u", "u4": "u", "u8": "u", "b1": "b"}
TORCH_DTYPES = {"f64": (torch.float64, "f"), "f32": (torch.float32, "f"), "f16": (torch.float16, "f"),
                "bf16": (torch.bfloat16, "f"), "i64": (torch.int64, "i"), "i32": (torch.int32, "i"),
                "i16": (torch.int16, "i"), "i8": (torch.int8, "i"), "u8": (torch.uint8, "u"),
                "bool": (torch.bool, "b")}


def numpy_pattern(shape, code):
    n = int(np.prod(shape))
    return pattern_values(n, NUMPY_KINDS[code]).astype(np.dtype(code)).reshape(shape)


def torch_pattern(shape, name):
    dtype, kind = TORCH_DTYPES[name]
    n = int(np.prod(shape))
    return torch.from_numpy(np.asarray(pattern_values(n, kind))).to(dtype).reshape(shape)


def write(name, data):
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def random_arrays():
    rng = np.random.default_rng(20260126)
    return {"random_f32": rng.standard_normal((7, 9)).astype(np.float32),
            "random_f64": rng.standard_normal((5, 3)),
            "random_f16": rng.standard_normal((4, 4)).astype(np.float16)}


def make_safetensors():
    tensors = {name: torch_pattern((3, 5), name) for name in TORCH_DTYPES}
    tensors["scalar_f32"] = torch.tensor(2.5)
    tensors["empty_f32"] = torch.zeros(0, 4)
    save_torch(tensors, str(OUT / "all_dtypes.safetensors"), metadata={"purpose": "weights import tests"})
    save_numpy(random_arrays(), str(OUT / "expected.safetensors"))


def checkpoint():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    base = torch.arange(24, dtype=torch.float32)
    views = {"base": base,                                # one storage shared by four tensors
             "slice": base[5:17].view(3, 4),              # storage offset 5
             "transposed": base[0:12].view(3, 4).t(),     # strides (1, 4)
             "stepped": base[::3]}                        # stride 3
    return {"state_dict": model.state_dict(),
            "dtypes": {name: torch_pattern((3, 5), name) for name in TORCH_DTYPES},
            "views": views,
            "param": torch.nn.Parameter(torch_pattern((2, 3), "f32")),
            "list": [torch_pattern((2,), "i64"), torch_pattern((1, 2), "f64")],
            "random": torch.from_numpy(random_arrays()["random_f32"]),
            "epoch": 7, "name": "fixture", "lr": 0.25}


def make_torch():
    ckpt = checkpoint()
    torch.save(ckpt, OUT / "torch_zip.pt")
    torch.save(ckpt, OUT / "torch_legacy.pt", _use_new_zipfile_serialization=False)
    # What the readers must find, flattened with dotted names.
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}{i}.", v)
        elif isinstance(value, torch.Tensor):
            flat[prefix[:-1]] = value.detach().contiguous().clone()
    walk("", ckpt)
    save_torch(flat, str(OUT / "torch_expected.safetensors"))


def npy_bytes(array, version=None):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version, allow_pickle=True)
    return buf.getvalue()


def things_eeg_like():
    """A THINGS-EEG2 preprocessed file in miniature: [images, repetitions, channels, times]."""
    return {"preprocessed_eeg_data": numpy_pattern((4, 2, 3, 5), "f4"),
            "ch_names": ["Fp1", "Fp2", "Fz"],
            "times": np.arange(5) * 0.25 - 0.5}  # seconds, exactly representable


def make_numpy():
    for code in NUMPY_KINDS:
        write(f"npy/{code}.npy", npy_bytes(numpy_pattern((3, 5), code)))
    for code in ["f4", "i8", "f8", "u2"]:
        write(f"npy/be_{code}.npy", npy_bytes(numpy_pattern((3, 5), code).astype(">" + code)))
    write("npy/fortran_f4.npy", npy_bytes(np.asfortranarray(numpy_pattern((3, 5), "f4"))))
    write("npy/fortran_3d_f8.npy", npy_bytes(np.asfortranarray(numpy_pattern((2, 3, 4), "f8"))))
    write("npy/v2_f4.npy", npy_bytes(numpy_pattern((3, 5), "f4"), version=(2, 0)))
    write("npy/v3_f4.npy", npy_bytes(numpy_pattern((3, 5), "f4"), version=(3, 0)))
    write("npy/scalar_f8.npy", npy_bytes(np.array(2.5)))
    write("npy/empty_f4.npy", npy_bytes(np.zeros((0, 3), np.float32)))
    write("npy/random_f32.npy", npy_bytes(random_arrays()["random_f32"]))

    d = things_eeg_like()
    np.save(OUT / "things_eeg_like.npy", d, allow_pickle=True)          # numpy 2: numpy._core, protocol 4
    obj = np.empty((), dtype=object)
    obj[()] = d
    # numpy 1.x wrote protocol 3 with the old module path, as in the published THINGS-EEG2 files.
    p3 = pickle.dumps(obj, protocol=3).replace(b"numpy._core.", b"numpy.core.")
    header = npy_bytes(np.empty((), dtype=object))
    header = header[:header.index(b"\n") + 1]
    write("things_eeg_like_np1.npy", header + p3)
    for protocol in (2, 4, 5):   # bare pickle streams under a .npy name
        suffix = "" if protocol == 4 else f"_p{protocol}"
        write(f"things_eeg_like_pickle{suffix}.npy", pickle.dumps(d, protocol=protocol))

    # NumPy scalars, text arrays, object arrays and nested dicts inside a pickled dict.
    objects = {"sfreq": np.float64(100.0), "n_reps": np.int64(-4), "flag": np.bool_(True),
               "names": np.array(["Fp1", "Oz", "T\u00e4"]), "label": np.str_("test"),
               "nested": {"a": np.arange(3, dtype=np.int16), "b": [np.float32(0.5), "x"]},
               "objects": np.array([np.arange(2.0), None], dtype=object)}
    np.save(OUT / "numpy_objects.npy", objects, allow_pickle=True)

    arrays = {"pattern_f4": numpy_pattern((3, 5), "f4"), "pattern_i8": numpy_pattern((4,), "i8"),
              "random_f32": random_arrays()["random_f32"]}
    np.savez(OUT / "arrays.npz", **arrays)
    np.savez_compressed(OUT / "arrays_compressed.npz", **arrays)


def make_configs():
    """Config files as the libraries write them (HF writes only non-default values)."""
    import json
    import open_clip
    from transformers import CLIPConfig, CLIPVisionConfig, Dinov2Config

    def hf(name, config):
        d = OUT / "configs" / name
        d.mkdir(parents=True, exist_ok=True)
        config.save_pretrained(d)

    hf("hf_clip_vision", CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                                          num_attention_heads=4, image_size=32, patch_size=8,
                                          projection_dim=48))
    hf("hf_clip", CLIPConfig(vision_config={"hidden_size": 1024, "num_hidden_layers": 24,
                                            "num_attention_heads": 16, "patch_size": 14,
                                            "intermediate_size": 4096},
                             projection_dim=768))
    hf("hf_dinov2", Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6))
    (OUT / "configs" / "open_clip").mkdir(parents=True, exist_ok=True)
    for name in ["ViT-B-32", "RN50", "ViT-B-16-quickgelu"]:
        cfg = open_clip.get_model_config(name)
        (OUT / "configs" / "open_clip" / f"{name}.json").write_text(json.dumps(cfg, indent=2))
    hub = {"model_cfg": open_clip.get_model_config("ViT-L-14"),
           "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}}
    (OUT / "configs" / "open_clip" / "open_clip_config.json").write_text(json.dumps(hub, indent=2))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_configs()
    make_safetensors()
    make_torch()
    make_numpy()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(list(OUT.rglob('*.*')))} files under tests/fixtures/weights ({total} bytes)")
