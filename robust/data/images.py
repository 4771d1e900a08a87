"""Decode image files (ppm, jpg, png) with Pillow into uint8 arrays of one size.

Each image is converted to RGB, optionally to luma (``transforms.grayscale``), then resized to
``size × size`` with Pillow's antialiased bilinear filter when its size differs. Decoding runs in
a thread pool (Pillow releases the GIL while decoding and resizing).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from tqdm import tqdm

from robust.data.transforms import grayscale
from robust.errors import DataError

_WORKERS = min(8, os.cpu_count() or 1)
_BATCH = 1024  # encoded images held in memory at once


def decode(data: bytes, size: int, gray: bool, name: str) -> np.ndarray:
    """Decode one encoded image.

    Args:
        data: the file's bytes.
        size: output height and width.
        gray: convert to one luma channel.
        name: the file's name, for error messages.

    Returns:
        (C, size, size) uint8, C = 1 if ``gray`` else 3.

    Raises:
        DataError: the bytes are not a readable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {name}: {e}") from e
    chw = rgb.transpose(2, 0, 1)
    if gray:
        chw = grayscale(chw[None])[0]
    if chw.shape[1:] == (size, size):
        return np.ascontiguousarray(chw)
    planes = [
        np.asarray(Image.fromarray(p).resize((size, size), Image.Resampling.BILINEAR)) for p in chw
    ]
    return np.stack(planes)


def decode_all(
    items: Sequence[tuple[str, Callable[[], bytes]]], size: int, gray: bool, *, desc: str
) -> np.ndarray:
    """Decode many images in a thread pool.

    Args:
        items: (name, read) pairs; ``read()`` returns the encoded bytes. Reads happen in the
            calling thread, in order, so a shared archive handle is safe.
        size: output height and width.
        gray: convert to one luma channel.
        desc: progress-bar label.

    Returns:
        (N, C, size, size) uint8, in the order of ``items``.
    """
    out = np.empty((len(items), 1 if gray else 3, size, size), dtype=np.uint8)
    with (
        ThreadPoolExecutor(_WORKERS) as pool,
        tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr, disable=None) as bar,
    ):
        for start in range(0, len(items), _BATCH):
            batch = items[start : start + _BATCH]
            futures = [pool.submit(decode, read(), size, gray, name) for name, read in batch]
            for i, fut in enumerate(futures, start):
                out[i] = fut.result()
            bar.update(len(batch))
    return out
