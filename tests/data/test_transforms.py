"""Grayscale, resize and scaling (transforms.py)."""

from __future__ import annotations

import numpy as np
import torch

from robust.data.transforms import grayscale, to_float


def _rgb(r, g, b):
    x = np.zeros((1, 3, 2, 2), dtype=np.uint8)
    x[:, 0], x[:, 1], x[:, 2] = r, g, b
    return x


def test_grayscale_uses_bt601_luma_rounded():
    assert grayscale(_rgb(255, 255, 255)).tolist() == [[[[255, 255], [255, 255]]]]
    assert grayscale(_rgb(100, 0, 0))[0, 0, 0, 0] == 30  # 29.9
    assert grayscale(_rgb(0, 100, 0))[0, 0, 0, 0] == 59  # 58.7
    assert grayscale(_rgb(0, 0, 100))[0, 0, 0, 0] == 11  # 11.4
    assert grayscale(_rgb(10, 200, 30)).shape == (1, 1, 2, 2)


def test_swapped_grayscale_reproduces_the_seed_bug():
    assert grayscale(_rgb(100, 0, 0), swapped=True)[0, 0, 0, 0] == 11
    assert grayscale(_rgb(0, 0, 100), swapped=True)[0, 0, 0, 0] == 30


def test_to_float_scales_uint8_and_keeps_float():
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 1, 3)
    assert torch.allclose(to_float(x), torch.tensor([0.0, 0.2, 1.0]).reshape(1, 1, 1, 3))
    f = np.full((2, 1, 3, 3), 0.5)
    out = to_float(f)
    assert out.dtype == torch.float32 and torch.all(out == 0.5)


def test_resize_keeps_range_and_constant_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 3, 20, 20), dtype=np.uint8)
    for size in (7, 20, 41):
        out = to_float(x, size)
        assert out.shape == (5, 3, size, size) and out.min() >= 0 and out.max() <= 1
    flat = np.full((1, 1, 9, 9), 128, dtype=np.uint8)
    assert torch.allclose(to_float(flat, 4), torch.tensor(128 / 255))
