"""Writers of tiny files in each dataset's real published format, for the data tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from robust.data import cifar, gtsrb, intel
from robust.data.idx import FILES as IDX_FILES


def balanced_labels(n: int, n_classes: int) -> np.ndarray:
    """Labels 0, 1, ..., n_classes-1, 0, 1, ... (equal class counts when n divides)."""
    return (np.arange(n) % n_classes).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000080<ndim>, big-endian dims, then the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_set(
    directory: Path, n_train: int = 100, n_test: int = 30, side: int = 28, gz: bool = True
) -> dict[str, np.ndarray]:
    """The four MNIST-style files in ``directory``; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels": balanced_labels(n_train, 10),
        "t10k-images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels": balanced_labels(n_test, 10),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for filename in IDX_FILES:
        key = filename.split("-idx")[0]
        data = idx_bytes(arrays[key])
        if gz:
            (directory / filename).write_bytes(gzip.compress(data, mtime=0))
        else:
            (directory / filename.removesuffix(".gz")).write_bytes(data)
    return arrays


def cifar_batches(n_per_batch: int = 20, n_test: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    """Six (x (N, 3, 32, 32) uint8, y (N,) uint8) batches: data_batch_1..5 then test_batch."""
    rng = np.random.default_rng(1)
    sizes = [n_per_batch] * 5 + [n_test]
    return [
        (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), balanced_labels(n, 10))
        for n in sizes
    ]


def cifar_binary_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """Records of 1 label byte + 3072 pixel bytes, as in the binary version."""
    return np.concatenate([y[:, None], x.reshape(len(x), -1)], axis=1).astype(np.uint8).tobytes()


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 ``str`` opcodes, as the published CIFAR-10 batches were."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def cifar_python_bytes(x: np.ndarray, y: np.ndarray, *, py2: bool = True) -> bytes:
    """A pickled batch dict like the published python version (protocol 2, Python 2 strings)."""
    batch = {
        b"batch_label" if py2 else "batch_label": b"training batch 1 of 5",
        b"labels" if py2 else "labels": [int(v) for v in y],
        b"data" if py2 else "data": x.reshape(len(x), -1),
        b"filenames" if py2 else "filenames": [b"img.png"] * len(x),
    }
    if not py2:
        return pickle.dumps(batch, protocol=4)
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(batch)
    # numpy 1.x (which wrote the published files) named the module numpy.core.multiarray.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar(
    directory: Path, version: str = "bin", batches: list | None = None, archive: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 batches in ``directory``: ``version`` "bin" or "py", as a folder or a tar.gz."""
    batches = batches or cifar_batches()
    folder, files, tar_name = {
        "bin": (cifar.BIN_DIR, cifar.BIN_FILES, cifar.BIN_ARCHIVE),
        "py": (cifar.PY_DIR, cifar.PY_FILES, cifar.PY_ARCHIVE),
    }[version]
    encode = cifar_binary_bytes if version == "bin" else cifar_python_bytes
    contents = {f"{folder}/{f}": encode(x, y) for f, (x, y) in zip(files, batches, strict=True)}
    directory.mkdir(parents=True, exist_ok=True)
    if archive:
        write_tar(directory / tar_name, contents)
    else:
        for name, data in contents.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(data)
    return batches


def write_tar(path: Path, contents: dict[str, bytes]) -> None:
    """A .tar.gz holding ``contents`` (member name → bytes)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def ppm_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PPM")
    return buf.getvalue()


def gtsrb_contents(per_class: int = 10) -> dict[str, bytes]:
    """Members of a tiny GTSRB training archive: 43 class folders of ppm images + GT csv."""
    rng = np.random.default_rng(2)
    contents = {}
    for c in range(gtsrb.N_CLASSES):
        rows = [";".join(gtsrb.COLUMNS)]
        for i in range(per_class):
            h, w = rng.integers(5, 13, 2)
            name = f"{i // 5:05d}_{i % 5:05d}.ppm"
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            contents[f"{gtsrb.IMAGES}/{c:05d}/{name}"] = ppm_bytes(rgb)
            rows.append(f"{name};{w};{h};1;1;{w - 1};{h - 1};{c}")
        contents[f"{gtsrb.IMAGES}/{c:05d}/GT-{c:05d}.csv"] = ("\r\n".join(rows) + "\r\n").encode()
    return contents


def write_tree(directory: Path, contents: dict[str, bytes]) -> None:
    for name, data in contents.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)


def write_zip(path: Path, contents: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)


def jpg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_intel(
    directory: Path, n_train: int = 10, n_test: int = 3, doubled: bool = True, side: int = 150
) -> None:
    """Kaggle's layout: seg_train[/seg_train]/<class>/*.jpg and seg_test[/seg_test]/<class>/."""
    for part, n in (("seg_train", n_train), ("seg_test", n_test)):
        base = directory / part / part if doubled else directory / part
        for label, c in enumerate(intel.CLASSES):
            (base / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (side, side) if i else (side - 30, side + 10)  # one odd size per class
                rgb = np.full((*shape, 3), 40 * label, dtype=np.uint8)
                rgb[:10, :10] = 20 * i  # tells images of one class apart
                (base / c / f"{i}.jpg").write_bytes(jpg_bytes(rgb))
