"""Image operations shared by the loaders: grayscale, resize, and conversion to float tensors.

Grayscale uses ITU-R BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B``, in OpenCV's 14-bit fixed
point (``cv2.cvtColor``, rounded to uint8), which is what the guided-retraining seed used via
``cv2.imread(path, 0)``. ``swapped=True`` reproduces a seed bug: the seed applied
``COLOR_BGR2GRAY`` to RGB CIFAR-10 arrays, so R and B swap weights
(``Y = 0.299 B + 0.587 G + 0.114 R``). Resizing is bilinear with antialiasing (torch's
``interpolate(..., antialias=True)``, which matches Pillow's bilinear filter); the seed used
``cv2.resize`` without antialiasing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

_SHIFT = 14
_R, _G, _B = 4899, 9617, 1868  # round(0.299, 0.587, 0.114 * 2**14), as in OpenCV
_CHUNK = 4096  # images per step: bounds the float/uint32 temporaries


def grayscale(x: np.ndarray, *, swapped: bool = False) -> np.ndarray:
    """Convert RGB images to one luma channel.

    Args:
        x: (N, 3, H, W) uint8 RGB images.
        swapped: weight R with 0.114 and B with 0.299 (the seed's CIFAR-10 bug).

    Returns:
        (N, 1, H, W) uint8 luma, rounded as OpenCV rounds.
    """
    w_r, w_b = (_B, _R) if swapped else (_R, _B)
    out = np.empty((x.shape[0], 1, *x.shape[2:]), dtype=np.uint8)
    for i in range(0, len(x), _CHUNK):
        c = x[i : i + _CHUNK].astype(np.uint32)
        y = c[:, 0] * w_r + c[:, 1] * _G + c[:, 2] * w_b + (1 << (_SHIFT - 1))
        out[i : i + _CHUNK, 0] = y >> _SHIFT
    return out


def to_float(x: np.ndarray, size: int | None = None) -> torch.Tensor:
    """Scale images to float32 in [0, 1] and optionally resize them to ``size × size``.

    Args:
        x: (N, C, H, W) uint8 in 0..255, or floating point already in [0, 1].
        size: output height and width; None keeps the input's.

    Returns:
        (N, C, size, size) float32 tensor in [0, 1].
    """
    n, c, h, w = x.shape
    out_h, out_w = (h, w) if size is None else (size, size)
    out = torch.empty((n, c, out_h, out_w), dtype=torch.float32)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    for i in range(0, n, _CHUNK):
        t = torch.from_numpy(np.array(x[i : i + _CHUNK], dtype=np.float32))
        t /= scale
        if (out_h, out_w) != (h, w):
            t = F.interpolate(
                t, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True
            )
        out[i : i + _CHUNK] = t.clamp_(0.0, 1.0)
    return out
