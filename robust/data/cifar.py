"""CIFAR-10 from its published binary or python batches (Krizhevsky, 2009).

Source: https://www.cs.toronto.edu/~kriz/cifar.html. The binary archive
``cifar-10-binary.tar.gz`` (MD5 c32a1d4ab5d03f1284b67883e8d87530, as published on that page) is
what ``download=True`` fetches; each of its ``data_batch_{1..5}.bin`` and ``test_batch.bin``
holds records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32×32). The python version
(``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``) is accepted too. Its batches are
pickles; robust never unpickles outside data freely, so they are read with a restricted
unpickler that can only rebuild numpy arrays and refuses anything else with a ``DataError``.
Archives are not extracted wholesale: only the six expected regular-file members are read and
written, under names robust builds itself, so a crafted archive cannot write elsewhere. Members
are read with a size cap and the scan stops after ``MAX_MEMBERS`` entries (see ``archive``), so
a decompression bomb cannot exhaust memory.

Difference from the seed code: the seed took ``keras.datasets.cifar10`` and split train+test
70/20/10 unseeded; here the default keeps the official test set and holds out a seeded,
stratified 10 % of the training set for validation (``preset="guided_retraining"`` restores the
seed's split and its grayscale, see ``transforms``).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from robust.data.archive import read_capped, too_big
from robust.data.download import Remote, fetch
from robust.data.raw import Raw
from robust.errors import DataError

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
BIN_DIR, PY_DIR = "cifar-10-batches-bin", "cifar-10-batches-py"
BIN_ARCHIVE, PY_ARCHIVE = "cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"
BIN_FILES = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")
PY_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
EXPECTED = (
    BIN_ARCHIVE,
    *(f"{BIN_DIR}/{f}" for f in BIN_FILES),
    PY_ARCHIVE,
    *(f"{PY_DIR}/{f}" for f in PY_FILES),
)
REMOTE = Remote(
    "cifar10",
    "https://www.cs.toronto.edu/~kriz/",
    page="https://www.cs.toronto.edu/~kriz/cifar.html",
    md5={BIN_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"},
)
# A real batch is 30,730,000 bytes (binary) or about 31.0 MB (python, with labels and file
# names), so 128 MiB refuses no real member with a 4x margin and bounds memory per member.
MAX_MEMBER_BYTES = 128 << 20
# The published archives hold 9 entries (the folder, 6 batches, batches.meta, readme.html); the
# cap bounds the tar headers a crafted archive can make tarfile keep in memory.
MAX_MEMBERS = 1_000
_RECORD = 1 + 3 * 32 * 32


def load_raw(directory: Path, download: bool) -> Raw:
    """Load CIFAR-10 from ``directory``: binary or python batches, extracted or archived."""
    layouts = ((BIN_DIR, BIN_FILES, BIN_ARCHIVE), (PY_DIR, PY_FILES, PY_ARCHIVE))
    for folder, files, _ in layouts:
        if all((directory / folder / f).is_file() for f in files):
            return _read_folder(directory / folder, files)
    for folder, files, archive in layouts:
        if (directory / archive).is_file():
            _extract(directory / archive, folder, files, directory / folder)
            return _read_folder(directory / folder, files)
    hint = (
        f"cifar10 needs {BIN_ARCHIVE} (or its extracted {BIN_DIR}/ folder, or the python "
        f"version {PY_ARCHIVE} or {PY_DIR}/) in {directory}; download it by hand from "
        f"{REMOTE.page}"
    )
    if not download:
        raise DataError(
            f"cifar10 files not found in {directory}: expected {BIN_DIR}/ with "
            f"{', '.join(BIN_FILES)} or {BIN_ARCHIVE} (or the python version {PY_DIR}/ or "
            f"{PY_ARCHIVE}); download them from {REMOTE.page} or pass download=True with "
            "network access"
        )
    archive = fetch(
        REMOTE.url(BIN_ARCHIVE), directory / BIN_ARCHIVE, REMOTE.md5[BIN_ARCHIVE], hint=hint
    )
    _extract(archive, BIN_DIR, BIN_FILES, directory / BIN_DIR)
    return _read_folder(directory / BIN_DIR, BIN_FILES)


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary batch: (N, 3, 32, 32) uint8 images and (N,) int64 labels."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if not data or len(data) % _RECORD:
        raise DataError(
            f"{path} has {len(data)} bytes, not a positive multiple of the {_RECORD}-byte "
            "CIFAR-10 record (1 label byte + 3072 pixel bytes); the file is truncated or not "
            "a CIFAR-10 binary batch"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, _RECORD)
    return _checked(records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0], path)


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a python (pickled) batch safely: (N, 3, 32, 32) uint8 images, (N,) int64 labels.

    Raises:
        DataError: the pickle is malformed, is not a CIFAR-10 batch, or asks for anything
            other than numpy array reconstruction (nothing in it is executed).
    """
    try:
        with path.open("rb") as f:
            batch = _RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except (
        pickle.UnpicklingError,
        OSError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
    ) as e:
        raise DataError(f"cannot read {path}: not a valid CIFAR-10 python batch ({e})") from e
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}, not a CIFAR-10 batch dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == _RECORD - 1
    ):
        raise DataError(
            f"{path} has no 'data' entry of (N, 3072) uint8 pixels; it is not a CIFAR-10 batch"
        )
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path} has 'labels' that are not integers ({e})") from e
    if y.shape != (len(data),):
        raise DataError(
            f"{path} holds {len(data)} images but 'labels' has shape {y.shape}; expected "
            f"({len(data)},)"
        )
    return _checked(data.reshape(-1, 3, 32, 32), y, path)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; refuses every other global."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def __init__(self, file: io.BufferedReader, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._path} asks to load {module}.{name}, which a CIFAR-10 batch never "
                "needs; refusing to unpickle it (only numpy arrays are allowed)"
            ) from None


def _checked(x: np.ndarray, y: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if y.size and (y.min() < 0 or y.max() >= len(CLASSES)):
        bad = y.min() if y.min() < 0 else y.max()
        raise DataError(f"{path} contains label {bad}, outside 0..{len(CLASSES) - 1}")
    return x, y.astype(np.int64)


def _read_folder(folder: Path, files: tuple[str, ...]) -> Raw:
    read = read_binary_batch if files is BIN_FILES else read_python_batch
    parts = [read(folder / f) for f in files]
    x = np.concatenate([p[0] for p in parts[:-1]])
    y = np.concatenate([p[1] for p in parts[:-1]])
    return Raw(x, y, parts[-1][0], parts[-1][1], CLASSES)


def _extract(archive: Path, folder: str, files: tuple[str, ...], dest: Path) -> None:
    """Copy the expected regular-file members ``folder/<file>`` of ``archive`` into ``dest``."""
    cap_name = "robust.data.cifar.MAX_MEMBER_BYTES"
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _scan(tar, archive, cap_name)
            dest.mkdir(parents=True, exist_ok=True)
            for f in files:
                member = members.get(f"{folder}/{f}")
                if member is None:
                    raise DataError(
                        f"{archive} has no member {folder}/{f}; it is not the CIFAR-10 archive "
                        f"(expected {', '.join(f'{folder}/{g}' for g in files)})"
                    )
                src = tar.extractfile(member) if member.isfile() else None
                if src is None:
                    raise DataError(f"{archive} member {folder}/{f} is not a regular file")
                data = read_capped(
                    src,
                    archive=archive,
                    member=member.name,
                    cap=MAX_MEMBER_BYTES,
                    cap_name=cap_name,
                    declared=member.size,
                )
                _write_atomic(dest / f, data)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {archive}: {e} (is the archive complete?)") from e


def _scan(tar: tarfile.TarFile, archive: Path, cap_name: str) -> dict[str, tarfile.TarInfo]:
    """Name → entry for every entry of ``tar`` (the last of equal names, as ``getmember``).

    Refuses an archive with more than ``MAX_MEMBERS`` entries or any entry declaring more than
    ``MAX_MEMBER_BYTES``, before tarfile decompresses past it.
    """
    members: dict[str, tarfile.TarInfo] = {}
    for i, member in enumerate(tar):
        if i >= MAX_MEMBERS:
            raise DataError(
                f"{archive} has more than {MAX_MEMBERS:,} entries "
                "(robust.data.cifar.MAX_MEMBERS), the CIFAR-10 archive has 9; refusing to "
                "read further: the file is corrupt or a decompression bomb"
            )
        if member.size > MAX_MEMBER_BYTES:
            raise DataError(
                too_big(
                    archive,
                    member.name,
                    MAX_MEMBER_BYTES,
                    cap_name,
                    f"declares {member.size:,} bytes",
                )
            )
        members[member.name] = member
    return members


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
