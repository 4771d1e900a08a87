"""Intel Image Classification: 150×150 natural scenes in 6 classes (Kaggle).

Source: Intel's scene-classification challenge, published by Puneet Bansal on Kaggle,
https://www.kaggle.com/datasets/puneet6060/intel-image-classification. There is no public
direct download URL (Kaggle requires a login), so ``download=True`` cannot fetch it: download
``archive.zip`` from that page and extract it into ``<root>/intel/``.

Layout: ``seg_train/seg_train/<class>/*.jpg`` (14,034 images) and
``seg_test/seg_test/<class>/*.jpg`` (3,000), classes buildings, forest, glacier, mountain, sea,
street; ``seg_train/<class>/`` without the doubled folder is accepted too, and ``seg_pred``
(unlabelled) is ignored. Images are 150×150 RGB; the few of other sizes are resized to 150 (or
to ``size``) with Pillow's bilinear filter.
Decoded arrays are cached (see ``cache``).

Differences from the seed code: the seed split ``seg_train`` 0.8/0.2 per class folder with
``splitfolders.ratio(seed=42)`` and read images with ``cv2.imread(path, 0)`` and ``cv2.resize``
to 48×48 (no antialiasing); here validation is a stratified 20 % of ``seg_train`` drawn with
scikit-learn and ``seed``, and ``preset="guided_retraining"`` gives grayscale 48×48.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from robust.data import cache
from robust.data.images import decode_all
from robust.data.raw import Raw
from robust.errors import DataError

CLASSES = ("buildings", "forest", "glacier", "mountain", "sea", "street")
NATIVE_SIZE = 150
PAGE = "https://www.kaggle.com/datasets/puneet6060/intel-image-classification"
EXPECTED = ("seg_train/seg_train/", "seg_test/seg_test/")
_SUFFIXES = (".jpg", ".jpeg", ".png")


def load_raw(directory: Path, size: int, gray: bool) -> Raw:
    """Load ``seg_train`` (as ``x``) and ``seg_test`` (as ``test_x``) from ``directory``.

    Args:
        directory: ``<root>/intel``.
        size: output height and width (150 is native).
        gray: convert to one luma channel.
    """
    train_dir, test_dir = _part(directory, "seg_train"), _part(directory, "seg_test")
    if train_dir is None or test_dir is None:
        raise DataError(
            f"intel files not found in {directory}: expected seg_train/seg_train/<class>/*.jpg "
            f"and seg_test/seg_test/<class>/*.jpg for the classes {', '.join(CLASSES)}; there "
            f"is no public direct download (Kaggle requires a login), so download archive.zip "
            f"from {PAGE} by hand and extract it into {directory}"
        )
    train_files, train_y = _listing(train_dir)
    test_files, test_y = _listing(test_dir)
    sig = cache.signature(train_files + test_files, directory)
    path = cache.cache_path(directory, size, gray)
    cached = cache.read(path, sig)
    if cached is None:
        cached = {
            "x": decode_all(_items(train_files), size, gray, desc="intel seg_train"),
            "y": train_y,
            "test_x": decode_all(_items(test_files), size, gray, desc="intel seg_test"),
            "test_y": test_y,
        }
        cache.write(path, cached, sig)
    return Raw(cached["x"], cached["y"], cached["test_x"], cached["test_y"], CLASSES)


def _part(directory: Path, part: str) -> Path | None:
    """``directory/part/part`` (Kaggle's doubled folder) or ``directory/part``, if present."""
    for candidate in (directory / part / part, directory / part):
        if any((candidate / c).is_dir() for c in CLASSES):
            return candidate
    return None


def _listing(folder: Path) -> tuple[list[Path], np.ndarray]:
    missing = [c for c in CLASSES if not (folder / c).is_dir()]
    if missing:
        raise DataError(
            f"intel class folders {', '.join(missing)} not found in {folder}: expected one "
            f"folder per class ({', '.join(CLASSES)}); the extraction is incomplete"
        )
    files, labels = [], []
    for label, c in enumerate(CLASSES):
        found = sorted(p for p in (folder / c).iterdir() if p.suffix.lower() in _SUFFIXES)
        if not found:
            raise DataError(f"intel class folder {folder / c} holds no .jpg images")
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def _items(files: list[Path]) -> list[tuple[str, Callable[[], bytes]]]:
    return [(str(p), lambda p=p: _read_file(p)) for p in files]


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e
