"""Seeded train/validation/test splits by index (scikit-learn's ``train_test_split``).

Splits are index arrays into the arrays a loader returned, each sorted ascending so a split keeps
the loader's order. ``random_state=seed`` makes them repeat exactly; the seed code
(guided-retraining, notes §1) split without a seed.
"""

from __future__ import annotations

import numpy as np

from robust.errors import DataError

_SEED_TRAIN, _SEED_VAL, _SEED_TEST = 0.70, 0.20, 0.10


def holdout(
    y: np.ndarray, fraction: float, seed: int, *, stratify: bool = True, what: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..len(y)-1`` into a kept part and a held-out ``fraction``.

    Args:
        y: (N,) integer labels.
        fraction: share held out, in (0, 1); scikit-learn rounds the held-out count up.
        seed: random state.
        stratify: keep class proportions in both parts.
        what: dataset name for error messages.

    Returns:
        (kept, held_out) sorted index arrays.
    """
    from sklearn.model_selection import train_test_split  # slow import, only when splitting

    idx = np.arange(len(y))
    try:
        kept, held = train_test_split(
            idx, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as e:
        raise DataError(
            f"cannot split {what} ({len(y)} images) with a held-out share of {fraction:.3g}"
            f"{' stratified by class' if stratify else ''}: {e}"
        ) from e
    return np.sort(kept), np.sort(held)


def three_way(
    y: np.ndarray, val: float, test: float, seed: int, *, stratify: bool = True, what: str = "data"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into train, validation and test shares.

    The ``val + test`` share is held out first, then divided ``val : test``.

    Args:
        y: (N,) integer labels.
        val: validation share of the whole.
        test: test share of the whole.
        seed: random state (used for both cuts).
        stratify: keep class proportions in every part.
        what: dataset name for error messages.

    Returns:
        (train, val, test) sorted index arrays.
    """
    train, rest = holdout(y, val + test, seed, stratify=stratify, what=what)
    val_in_rest, test_in_rest = holdout(
        y[rest], test / (val + test), seed, stratify=stratify, what=what
    )
    return train, rest[val_in_rest], rest[test_in_rest]


def seed_split(
    y: np.ndarray, seed: int, *, what: str = "data"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The guided-retraining seed's split of train+test: 70 % train, the rest 1:2 test:val.

    The seed split unstratified and unseeded. The sizes it printed, 48999/14000/7001 on 70,000
    images and 41999/12000/6001 on 60,000, are those of the common recipe
    ``train_test_split(x, y, test_size=1 - 0.70)`` then
    ``train_test_split(rest, test_size=0.10 / (0.10 + 0.20))``, whose float rounding
    (``ceil((1 - 0.7) * n)``) moves one image out of train (recipe inferred from the sizes).
    This repeats that recipe, seeded, so the sizes match exactly.

    Returns:
        (train, val, test) sorted index arrays.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        train, rest = train_test_split(idx, test_size=1 - _SEED_TRAIN, random_state=seed)
        val, test = train_test_split(
            rest, test_size=_SEED_TEST / (_SEED_TEST + _SEED_VAL), random_state=seed
        )
    except ValueError as e:
        raise DataError(f"cannot split {what} ({len(y)} images) 70/20/10: {e}") from e
    return np.sort(train), np.sort(val), np.sort(test)
