"""THINGS-EEG2 preprocessed files in miniature, for the loaders in apps/decoding/things_eeg.

The published release stores each subject's data as sub-XX/preprocessed_eeg_{training,test}.npy:
a dict saved with np.save (an object array holding a pickle; NumPy 1.x wrote protocol 3 with
the numpy.core module path), and some re-preprocessed releases store the same dict as a bare
pickle stream under the same name. Keys: preprocessed_eeg_data [images, repetitions, channels,
times], ch_names (list of str), times (float64 seconds).

Every value is recomputable in C++: value(image, repetition, channel, time) =
1000 * image + 100 * repetition + channel + time / 128, exact in float32 and float64.
Sizes are small (a few images and repetitions); channels and times are the real ones.
Writes tests/fixtures/things/.
"""
import pathlib
import pickle

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "things"

# The 63 channels of the THINGS-EEG2 recordings, in the order of the preprocessed files.
CHANNELS_63 = [
    "Fp1", "Fz", "F3", "F7", "FT9", "FC5", "FC1", "C3", "T7", "TP9", "CP5", "CP1", "Pz", "P3",
    "P7", "O1", "Oz", "O2", "P4", "P8", "TP10", "CP6", "CP2", "Cz", "C4", "T8", "FT10", "FC6",
    "FC2", "F4", "F8", "Fp2", "AF7", "AF3", "AFz", "F1", "F5", "FT7", "FC3", "C1", "C5", "TP7",
    "CP3", "P1", "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6", "P2", "CPz", "CP4", "TP8", "C6",
    "C2", "FC4", "FT8", "F6", "AF8", "AF4", "F2"]
# The 17 occipital and parietal channels most decoding work keeps.
CHANNELS_17 = ["Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P5", "PO7", "PO3", "POz",
               "PO4", "PO8", "P6", "P2"]
assert len(CHANNELS_63) == 63 and len(set(CHANNELS_63)) == 63
assert set(CHANNELS_17) <= set(CHANNELS_63)


def eeg_values(images, repetitions, channels, times, dtype):
    i, r, c, t = np.meshgrid(np.arange(images), np.arange(repetitions), np.arange(channels),
                             np.arange(times), indexing="ij")
    return (1000.0 * i + 100.0 * r + c + t / 128.0).astype(dtype)


def eeg_dict(images, repetitions, ch_names, n_times, rate, dtype):
    return {"preprocessed_eeg_data": eeg_values(images, repetitions, len(ch_names), n_times, dtype),
            "ch_names": list(ch_names),
            "times": np.round(-0.2 + np.arange(n_times) / rate, 6)}


def npy_header_for_object():
    """The .npy header np.save writes for a 0-d object array (what precedes the pickle)."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buf.getvalue()


def save_np1(path, d):
    """np.save of a dict as NumPy 1.x wrote it (the published files): protocol 3, numpy.core."""
    obj = np.empty((), dtype=object)
    obj[()] = d
    data = pickle.dumps(obj, protocol=3).replace(b"numpy._core.", b"numpy.core.")
    path.write_bytes(npy_header_for_object() + data)


def save_np2(path, d):
    """np.save of a dict by this NumPy (2.x: numpy._core, its default protocol)."""
    np.save(path, d, allow_pickle=True)


def save_pickle(path, d):
    """A bare pickle stream under the .npy name, as some re-preprocessed releases have it."""
    path.write_bytes(pickle.dumps(d, protocol=4))


def write_subject(folder, save, dtype, train_shape, test_shape, ch_names, n_times, rate):
    folder.mkdir(parents=True, exist_ok=True)
    save(folder / "preprocessed_eeg_training.npy",
         eeg_dict(*train_shape, ch_names, n_times, rate, dtype))
    save(folder / "preprocessed_eeg_test.npy", eeg_dict(*test_shape, ch_names, n_times, rate, dtype))


def main():
    # Three subjects of one study (17 channels, 100 Hz), each file in another of the forms.
    study = OUT / "study17"
    write_subject(study / "sub-01", save_np1, np.float32, (3, 2), (2, 2), CHANNELS_17, 100, 100)
    write_subject(study / "sub-02", save_pickle, np.float64, (3, 2), (2, 2), CHANNELS_17, 100, 100)
    write_subject(study / "sub-03", save_np2, np.float32, (3, 2), (2, 2), CHANNELS_17, 100, 100)

    # The full montage at 250 Hz, one trial per file.
    full = OUT / "full63" / "sub-01"
    full.mkdir(parents=True, exist_ok=True)
    save_np1(full / "preprocessed_eeg_test.npy", eeg_dict(1, 1, CHANNELS_63, 250, 250, np.float32))
    save_pickle(full / "preprocessed_eeg_training.npy",
                eeg_dict(1, 1, CHANNELS_63, 250, 250, np.float32))

    # Bad files: a dict without the data key, NaN in the data, data of the wrong rank.
    bad = OUT / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    d = eeg_dict(2, 1, CHANNELS_17, 100, 100, np.float32)
    d["eeg"] = d.pop("preprocessed_eeg_data")
    save_np2(bad / "missing_key.npy", d)
    d = eeg_dict(2, 1, CHANNELS_17, 100, 100, np.float32)
    d["preprocessed_eeg_data"][1, 0, 5, 7] = np.nan
    save_np2(bad / "nan.npy", d)
    d = eeg_dict(2, 1, CHANNELS_17, 100, 100, np.float32)
    d["preprocessed_eeg_data"] = d["preprocessed_eeg_data"][:, 0]
    save_pickle(bad / "rank3.npy", d)
    d = eeg_dict(2, 1, CHANNELS_17, 100, 100, np.float32)
    d["ch_names"] = d["ch_names"][:-1]
    save_np2(bad / "names_mismatch.npy", d)

    files = sorted(p for p in OUT.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files under tests/fixtures/things ({total} bytes)")


if __name__ == "__main__":
    main()
