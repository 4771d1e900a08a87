"""The dataset registry: ``load(name, ...)`` checks its arguments, reads, splits and scales.

Every dataset comes back as float32 images in [0, 1], shape (N, C, H, W), with int64 labels,
split into train/val/test deterministically for a given ``seed``:

=========  ==============================  ===============================================
name       files in ``<root>/<name>/``      default split (seeded, stratified)
=========  ==============================  ===============================================
digits     none (bundled with sklearn)     60 / 20 / 20 % of the 1,797 images
mnist      4 IDX ``.gz`` files             val = 10 % of official train; official test
fashion    4 IDX ``.gz`` files             val = 10 % of official train; official test
cifar10    binary or python batches        val = 10 % of official train; official test
gtsrb      official training zip/folder    80 / 10 / 10 %, images resized to 48 by default
intel      Kaggle seg_train / seg_test     val = 20 % of seg_train; test = seg_test
=========  ==============================  ===============================================

``preset="guided_retraining"`` reproduces the preprocessing of the guided-retraining study
(seed 000, ``seeds/guided-retraining-code-notes.md`` §1): grayscale 48×48 for gtsrb and intel,
grayscale 32×32 for cifar10 *with the seed's swapped R/B luma weights* (a seed bug kept on
purpose, see ``transforms``), 28×28 for mnist and fashion, and for mnist, fashion and cifar10
the seed's split of train+test concatenated (70 % train, the rest 2:1 val:test; seeded here,
unstratified like the seed, see ``split.seed_split``). For digits it changes nothing.
"""

from __future__ import annotations

import logging
import numbers
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from robust.data import cifar, digits, gtsrb, idx, intel
from robust.data.dataset import Dataset, Split
from robust.data.raw import Raw
from robust.data.split import holdout, seed_split, three_way
from robust.data.transforms import grayscale as to_gray
from robust.data.transforms import to_float
from robust.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion", "cifar10", "gtsrb", "intel")
PRESETS = ("guided_retraining",)
DATA_ENV = "ROBUST_DATA"
DEFAULT_ROOT = "data"
MAX_SIZE = 1024
_MAX_SEED = 2**32 - 1
_DEFAULT_SIZE = {"gtsrb": 48, "intel": intel.NATIVE_SIZE}
_PRESET_SIZE = {"mnist": 28, "fashion": 28, "cifar10": 32, "gtsrb": 48, "intel": 48}
_EXPECTED = {
    "digits": (),
    "mnist": idx.FILES,
    "fashion": idx.FILES,
    "cifar10": cifar.EXPECTED,
    "gtsrb": gtsrb.EXPECTED,
    "intel": intel.EXPECTED,
}
log = logging.getLogger(__name__)

Gray = Literal["luma", "swapped"] | None


def expected_files(name: str) -> list[str]:
    """The files a loader looks for, relative to ``<root>/<name>/``; folders end with ``/``.

    Alternatives are all listed (e.g. cifar10's binary archive, its extracted folder, and the
    python version); digits needs none.

    Example:
        >>> expected_files("mnist")[0]
        'train-images-idx3-ubyte.gz'
    """
    _check_name(name)
    return list(_EXPECTED[name])


def load(
    name: str,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    *,
    size: int | None = None,
    grayscale: bool = False,
    preset: str | None = None,
    download: bool = True,
) -> Dataset:
    """Load a dataset, split it with ``seed`` and scale it to float32 in [0, 1].

    Args:
        name: one of ``DATASETS``.
        root: the data directory; each dataset lives in ``root/<name>/``. None means the
            environment variable ``ROBUST_DATA``, else ``./data``.
        seed: random state of the splits, in 0..2**32-1.
        size: resize every image to ``size × size`` (bilinear, antialiased), 1..1024; None keeps
            the native size (gtsrb: 48, its images vary).
        grayscale: convert RGB to one channel of ITU-R 601 luma.
        preset: ``"guided_retraining"`` reproduces that study's preprocessing (module
            docstring); it sets size and grayscale itself.
        download: fetch missing files (with checksums) where a public URL exists.

    Returns:
        The Dataset; ``x`` tensors are (N, C, H, W) float32 in [0, 1], ``y`` (N,) int64.

    Raises:
        ConfigError: an argument is invalid.
        DataError: files are missing (and cannot be downloaded) or malformed.

    Example:
        >>> ds = load("digits", seed=1)
        >>> ds.train.x.shape, ds.num_classes
        (torch.Size([1078, 1, 8, 8]), 10)
    """
    _check_name(name)
    directory = _resolve_root(root) / name
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not (0 <= seed <= _MAX_SEED)
    ):
        raise ConfigError(f"seed must be an integer in 0..2**32-1, but got {seed=}")
    if size is not None and (
        isinstance(size, bool)
        or not isinstance(size, numbers.Integral)
        or not 1 <= size <= MAX_SIZE
    ):
        raise ConfigError(f"size must be None or an integer in 1..{MAX_SIZE}, but got {size=}")
    for flag, value in (("grayscale", grayscale), ("download", download)):
        if not isinstance(value, bool):
            raise ConfigError(f"{flag} must be True or False, but got {flag}={value!r}")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)} or None")
    if preset is not None and (size is not None or grayscale):
        raise ConfigError(
            f"preset={preset!r} sets size and grayscale itself, so leave size=None and "
            f"grayscale=False, but got {size=}, {grayscale=}"
        )
    seed, size = int(seed), None if size is None else int(size)

    # What to do: output size, grayscale variant, and which split.
    if preset is None or name == "digits":
        size = size if size is not None else _DEFAULT_SIZE.get(name)
        gray: Gray = "luma" if grayscale else None
        seed_recipe = False
    else:
        size = _PRESET_SIZE[name]
        gray = "swapped" if name == "cifar10" else "luma" if name in ("gtsrb", "intel") else None
        seed_recipe = name in ("mnist", "fashion", "cifar10")

    # Read (gtsrb and intel decode straight to the output size and channels).
    if name in ("gtsrb", "intel"):
        decode_size = size if size is not None else _DEFAULT_SIZE[name]
        if name == "gtsrb":
            raw = gtsrb.load_raw(directory, download, decode_size, gray is not None)
        else:
            raw = intel.load_raw(directory, decode_size, gray is not None)
        size, gray = None, None
    elif name == "digits":
        raw = digits.load_raw()
    elif name == "cifar10":
        raw = cifar.load_raw(directory, download)
    else:
        raw = idx.load_raw(name, directory, download)

    train, val, test = _split(name, raw, seed, seed_recipe)
    ds = Dataset(
        name=name,
        train=_finish(train, size, gray),
        val=_finish(val, size, gray),
        test=_finish(test, size, gray),
        classes=raw.classes,
    )
    log.info("loaded %r", ds)
    return ds


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data directory ``load`` reads, as an absolute path.

    Args:
        root: the directory; None means the environment variable ``ROBUST_DATA``, else
            ``./data`` (relative to the working directory).

    Raises:
        ConfigError: ``root`` is not a path or None, or names a file.

    Example:
        >>> resolve_root("/srv/data")
        PosixPath('/srv/data')
    """
    return _resolve_root(root).absolute()


def _check_name(name: object) -> None:
    if not isinstance(name, str) or name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _resolve_root(root: object) -> Path:
    if root is None:
        root = os.environ.get(DATA_ENV) or DEFAULT_ROOT
    elif not isinstance(root, str | os.PathLike):
        raise ConfigError(
            f"root must be a directory path (str or os.PathLike) or None, but got {root=}"
        )
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"root must be a directory, but got root='{path}', which is a file")
    return path


_Part = tuple[np.ndarray, np.ndarray]


def _split(name: str, raw: Raw, seed: int, seed_recipe: bool) -> tuple[_Part, _Part, _Part]:
    """Divide ``raw`` into (x, y) train, val and test parts."""
    x, y = raw.x, raw.y
    if seed_recipe and raw.test_x is not None and raw.test_y is not None:
        x, y = np.concatenate([x, raw.test_x]), np.concatenate([y, raw.test_y])
        i_train, i_val, i_test = seed_split(y, seed, what=name)
        return (x[i_train], y[i_train]), (x[i_val], y[i_val]), (x[i_test], y[i_test])
    if raw.test_x is None or raw.test_y is None:
        val_share = {"digits": 0.2, "gtsrb": 0.1}[name]
        i_train, i_val, i_test = three_way(y, val_share, val_share, seed, what=name)
        return (x[i_train], y[i_train]), (x[i_val], y[i_val]), (x[i_test], y[i_test])
    i_train, i_val = holdout(y, 0.2 if name == "intel" else 0.1, seed, what=name)
    return (x[i_train], y[i_train]), (x[i_val], y[i_val]), (raw.test_x, raw.test_y)


def _finish(part: _Part, size: int | None, gray: Gray) -> Split:
    x, y = part
    if gray is not None and x.shape[1] == 3:
        x = to_gray(x, swapped=gray == "swapped")
    return Split(x=to_float(x, size), y=torch.tensor(y, dtype=torch.int64))
