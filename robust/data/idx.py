"""MNIST and Fashion-MNIST from their published IDX files.

Sources:
    MNIST: LeCun, Cortes, Burges, http://yann.lecun.com/exdb/mnist/, fetched from the mirror
    torchvision uses, https://ossci-datasets.s3.amazonaws.com/mnist/.
    Fashion-MNIST: Xiao, Rasul, Vollgraf (2017), arXiv:1708.07747,
    https://github.com/zalandoresearch/fashion-mnist, fetched from
    http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/.
    The MD5 digests are torchvision's (``torchvision/datasets/mnist.py``), cross-checked with
    several independent copies of that table.

Format (IDX): a big-endian header ``0x00 0x00 <type> <ndim>`` (type 0x08 = unsigned byte; magic
0x00000803 for (N, rows, cols) images, 0x00000801 for (N,) labels), ``ndim`` uint32 dimensions,
then the data. Files may be gzipped (``.gz``, as published) or already uncompressed (same name
without ``.gz``). A ``.gz`` file is decompressed with a bounded read, refused beyond
``MAX_MEMBER_BYTES`` (see ``archive``).

Difference from the seed code: the seed took ``keras.datasets`` arrays and split train+test
70/20/10 unseeded; here the default keeps the official test set and holds out a seeded,
stratified 10 % of the official training set for validation (``preset="guided_retraining"``
restores the seed's split, seeded).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from robust.data.archive import read_capped
from robust.data.download import Remote, fetch_all
from robust.data.raw import Raw
from robust.errors import DataError

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
UNCOMPRESSED = tuple(f.removesuffix(".gz") for f in FILES)
# The largest real file, train-images, is 47,040,016 bytes uncompressed (MNIST and Fashion
# alike); 256 MiB refuses none with a 5x margin (even EMNIST digits' 188 MB in the same format).
MAX_MEMBER_BYTES = 256 << 20
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

REMOTES = {
    "mnist": Remote(
        "mnist",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        page="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion": Remote(
        "fashion",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        page="https://github.com/zalandoresearch/fashion-mnist",
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}
CLASSES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}


def parse_idx(data: bytes, magic: int, name: str) -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file.

    Args:
        data: the whole (uncompressed) file.
        magic: the expected magic number, ``IMAGES_MAGIC`` or ``LABELS_MAGIC``.
        name: the file's name, for error messages.

    Returns:
        uint8 array with the dimensions from the header.

    Raises:
        DataError: wrong magic number, truncated header, or a length that does not match the
            dimensions.
    """
    if len(data) < 4:
        raise DataError(f"{name} is truncated: {len(data)} bytes, shorter than the IDX header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(
            f"{name} has a bad magic number 0x{got:08x}; expected 0x{magic:08x} "
            f"(IDX unsigned-byte {'labels' if magic == LABELS_MAGIC else 'images'})"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated: {len(data)} bytes, shorter than its header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise DataError(
            f"{name} is {what}: its header gives dimensions {dims}, i.e. {expected} bytes, "
            f"but the file has {len(data)}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an IDX file, gzipped if its name ends in ``.gz``; see ``parse_idx``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = read_capped(
                    f,
                    archive=path,
                    member=path.name.removesuffix(".gz"),
                    cap=MAX_MEMBER_BYTES,
                    cap_name="robust.data.idx.MAX_MEMBER_BYTES",
                )
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e} (is the download complete?)") from e
    return parse_idx(data, magic, str(path))


def load_raw(name: str, directory: Path, download: bool) -> Raw:
    """Load ``mnist`` or ``fashion`` from ``directory``, fetching missing files if allowed."""
    remote = REMOTES[name]
    missing = [f for f in FILES if _find(directory, f) is None]
    if missing:
        hint = (
            f"{name} needs {', '.join(FILES)} in {directory}; download them by hand from "
            f"{remote.page}"
        )
        if not download:
            raise DataError(
                f"{name} files not found in {directory}: expected {', '.join(FILES)} "
                f"(missing {', '.join(missing)}); download them from {remote.page} or pass "
                "download=True with network access"
            )
        fetch_all(remote, directory, missing, hint=hint)
    paths = [_find(directory, f) for f in FILES]
    x, y = _pair(paths[0], paths[1], len(CLASSES[name]))
    test_x, test_y = _pair(paths[2], paths[3], len(CLASSES[name]))
    if x.shape[2:] != test_x.shape[2:]:
        raise DataError(
            f"{name} training images are {x.shape[2:]} but test images are {test_x.shape[2:]} "
            f"in {directory}; the files come from different datasets"
        )
    return Raw(x, y, test_x, test_y, CLASSES[name])


def _find(directory: Path, filename: str) -> Path | None:
    for candidate in (directory / filename, directory / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _pair(images_path: Path, labels_path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels in {images_path.parent}"
        )
    if labels.size and labels.max() >= n_classes:
        raise DataError(f"{labels_path} contains label {labels.max()}, outside 0..{n_classes - 1}")
    return images[:, None], labels.astype(np.int64)
