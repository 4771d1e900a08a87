"""Robust-accuracy matrices: rows are models, columns are test sets, cells top-1 accuracy.

Seed 004 (``evaluateDGNRobust.py``, notes §4) crafted every adversarial test set once against
the original model and scored each hardened model on those transferred sets only. That is
:func:`transfer_matrix`. :func:`adaptive_matrix` adds what the seed did not: attacks crafted
against each row's model itself (a white-box attack on the defence, AutoAttack's ensemble
included), so a defence that only resists the original model's examples shows up.
:func:`write_matrix` keeps each cell's count and Wilson 95 % interval beside its accuracy.
Accuracy is against the true labels, so 0.0 means every input fooled the model (the seed's
"attack performance").

Everything here is pure of MLflow: models and tensors in, pandas DataFrames out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from robust.errors import ConfigError, DataError
from robust.models import predict

if TYPE_CHECKING:
    import pandas as pd

    from robust.evaluation.adaptive import Crafter

ADAPTIVE_METHODS = ("fgsm", "pgd", "bim")
"""The :class:`robust.attacks.AttackSpec` methods :func:`adaptive_matrix` crafts against each
model (a spec's DGN generators were trained against one model: their adaptive version is
:class:`robust.evaluation.AdaptiveDGN`)."""


def _accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> float:
    """Exact share of correct top-1 predictions (count / N in float64)."""
    pred = predict(model, x, batch_size=batch_size).argmax(1)
    return int((pred == torch.as_tensor(y).to("cpu", torch.long)).sum()) / len(pred)


def _check_models(models: Mapping[str, nn.Module]) -> None:
    if not models:
        raise ConfigError("models must map at least one row label to a model, but got none")


def _check_set(name: str, x: Tensor, y: Tensor) -> None:
    if len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"test set {name!r} must hold the same number N ≥ 1 of inputs and labels, but got "
            f"{len(x)} inputs and {len(y)} labels"
        )


def _frame(cells: dict[str, dict[str, float]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_dict(cells, orient="index", columns=columns, dtype=np.float64)
    frame.index.name = "model"
    frame.columns.name = "test set"
    return frame


def transfer_matrix(
    models: Mapping[str, nn.Module],
    test_sets: Mapping[str, tuple[Tensor, Tensor]],
    *,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Accuracy of every model on every fixed test set (e.g. clean, and sets crafted on one
    source model: transfer, as seed 004 evaluated its defences).

    Args:
        models: row label → classifier returning logits (evaluated on its own device, in eval
            mode, its mode restored).
        test_sets: column label → (x, y): x (N, C, H, W) float32 in [0, 1], y (N,) int labels.
        batch_size: inputs per forward pass.

    Returns:
        DataFrame, rows in ``models`` order (index name ``model``), columns in ``test_sets``
        order, cells top-1 accuracy in [0, 1] (float64).

    Raises:
        ConfigError: no model or no test set.
        DataError: a test set that is empty or whose x and y differ in length.

    Example:
        >>> m = transfer_matrix({"original": model}, {"clean": (x, y), "fgsm": (x_adv, y)})
        >>> m.loc["original", "fgsm"]
    """
    _check_models(models)
    if not test_sets:
        raise ConfigError("test_sets must map at least one column label to (x, y), but got none")
    for name, (x, y) in test_sets.items():
        _check_set(name, x, y)
    cells = {
        row: {col: _accuracy(model, x, y, batch_size) for col, (x, y) in test_sets.items()}
        for row, model in models.items()
    }
    return _frame(cells, list(test_sets))


def adaptive_matrix(
    models: Mapping[str, nn.Module],
    x: Tensor,
    y: Tensor,
    attacks: Mapping[str, Crafter],
    *,
    clean: bool = True,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Accuracy of every model on inputs crafted against that model itself (adaptive, white
    box), one column per attack, after a ``clean`` column.

    Args:
        models: row label → classifier returning logits; each is attacked on its own device.
        x: (N, C, H, W) float32 in [0, 1], the clean test inputs; y: (N,) int labels.
        attacks: column label → an attack crafted per model: an
            :class:`robust.attacks.AttackSpec` of a method in :data:`ADAPTIVE_METHODS`, an
            :class:`robust.evaluation.Adaptive` (APGD, FAB-T, Square, AutoAttack, …) or an
            :class:`robust.evaluation.AdaptiveDGN`.
        clean: start with a ``clean`` column (accuracy on ``x``).
        batch_size: inputs per pass, for the attack and the prediction; None: the attack's
            automatic size, 1024 for prediction.

    Returns:
        DataFrame as :func:`transfer_matrix`'s: rows in ``models`` order, columns ``clean``
        (if asked) then ``attacks`` in order, cells accuracy in [0, 1]. For the worst case
        per input over the attacks, per class and confusion, see
        :func:`robust.evaluation.evaluate_adaptive`.

    Raises:
        ConfigError: no model, no column, an attack named ``clean`` next to the clean column,
            or an AttackSpec whose method is not in :data:`ADAPTIVE_METHODS`.
        DataError: x and y differ in length or are empty.

    Example:
        >>> specs = {"fgsm": AttackSpec("fgsm", 0.3), "pgd": AttackSpec("pgd", 0.3, steps=20)}
        >>> m = adaptive_matrix({"original": model, "hardened": other}, x, y, specs)
    """
    from robust.attacks import AttackSpec

    _check_models(models)
    _check_set("clean", x, y)
    if clean and "clean" in attacks:
        raise ConfigError("attacks must not be labelled 'clean' when clean=True")
    if not attacks and not clean:
        raise ConfigError("adaptive_matrix needs at least one attack or clean=True")
    for col, spec in attacks.items():
        if isinstance(spec, AttackSpec) and spec.method not in ADAPTIVE_METHODS:
            raise ConfigError(
                f"attacks must use one of {', '.join(ADAPTIVE_METHODS)} (crafted against each "
                f"model), but column {col!r} has method={spec.method!r}"
            )
    predict_batch = batch_size or 1024
    columns = (["clean"] if clean else []) + list(attacks)
    cells: dict[str, dict[str, float]] = {}
    for row, model in models.items():
        cells[row] = {"clean": _accuracy(model, x, y, predict_batch)} if clean else {}
        for col, spec in attacks.items():
            x_adv = spec.craft(model, x, y, batch_size=batch_size)
            cells[row][col] = _accuracy(model, x_adv, y, predict_batch)
            del x_adv  # one adversarial set in memory at a time
    return _frame(cells, columns)


def plot_matrix(
    matrix: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    intervals: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write a robust-accuracy matrix as an annotated heat map PNG (matplotlib, Agg canvas).

    Colours span accuracy 0 (red) to 1 (green) whatever the values, so two matrices compare;
    every cell shows its accuracy in percent (white on the darkest colours). The figure grows
    with the matrix (about 0.9 in per column and 0.5 in per row, plus the labels' length), so
    a 10 × 10 matrix stays legible.

    Args:
        matrix: rows models, columns test sets, cells in [0, 1] (NaN is drawn blank).
        path: output file (``.png``); parent folders are created.
        title: figure title; None: none.
        intervals: (low, high) arrays of the matrix's shape, each cell's interval, drawn
            under its accuracy as ``[low, high]`` in percent.

    Returns:
        ``path`` as a Path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = matrix.to_numpy(dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise DataError(f"matrix must have at least one row and column, but got {values.shape}")
    n_rows, n_cols = values.shape
    cell = 0.9 if intervals is None else 1.25  # an interval needs a wider cell
    width = max(4.5, cell * n_cols + 0.09 * max(len(str(r)) for r in matrix.index) + 2.5)
    height = max(
        3.0,
        (0.5 if intervals is None else 0.6) * n_rows
        + 0.07 * max(len(str(c)) for c in matrix.columns)
        + 1.5,
    )
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.8, label="accuracy")
    ax.set(xticks=range(n_cols), yticks=range(n_rows), xlabel=matrix.columns.name or "")
    ax.set_xticklabels([str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticklabels([str(r) for r in matrix.index])
    ax.set_ylabel(matrix.index.name or "")
    if title:
        ax.set_title(title)
    fontsize = 8 if n_cols <= 12 else 6
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(values[i, j]):
                text = f"{100 * values[i, j]:.1f}"
                if intervals is not None:
                    low, high = intervals[0][i, j], intervals[1][i, j]
                    text += f"\n[{100 * low:.0f}, {100 * high:.0f}]"
                dark = not 0.15 <= values[i, j] <= 0.85  # the colour map's deep red and green
                color = "white" if dark else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def matrix_cells(matrix: pd.DataFrame, n: Mapping[str, int]) -> pd.DataFrame:
    """One row per cell: ``model``, ``test set``, ``correct``, ``n``, ``accuracy`` and its
    Wilson 95 % interval ``ci_low``, ``ci_high`` (conditional on the test inputs being a sample
    of the test distribution; an attack's accuracy is an upper bound on the robust one).

    Args:
        matrix: cells accuracy = correct / n, exactly (as the matrices here compute them).
        n: column label → the number of inputs of that column's test set.

    Raises:
        DataError: a column without its size.
    """
    from robust.evaluation.intervals import wilson

    if missing := [c for c in matrix.columns if c not in n]:
        raise DataError(f"n must give every column's number of inputs, but misses {missing}")
    long = matrix.rename_axis(index="model", columns="test set").stack().rename("accuracy")
    cells = long.reset_index()
    cells["n"] = cells["test set"].map(n).astype(np.int64)
    cells["correct"] = (cells["accuracy"] * cells["n"]).round().astype(np.int64)
    cells["ci_low"], cells["ci_high"] = wilson(cells["correct"].to_numpy(), cells["n"].to_numpy())
    return cells[["model", "test set", "correct", "n", "accuracy", "ci_low", "ci_high"]]


def interval_table(cells: pd.DataFrame) -> pd.DataFrame:
    """:func:`matrix_cells`' rows back as a model × column table of ``accuracy [low, high]``
    in percent, each column headed ``<column> (n=<n>)`` (for reports)."""
    text = [
        f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        for a, lo, hi in zip(cells["accuracy"], cells["ci_low"], cells["ci_high"], strict=True)
    ]
    columns = cells["test set"].astype(str)
    order = list(dict.fromkeys(columns))
    n = dict(zip(columns, cells["n"], strict=True))
    table = cells.assign(cell=text, col=columns).pivot(index="model", columns="col", values="cell")
    table = table.loc[list(dict.fromkeys(cells["model"])), order]
    table.columns = [f"{c} (n={n[c]})" for c in order]
    return table.reset_index()


def write_matrix(
    matrix: pd.DataFrame,
    directory: str | os.PathLike[str],
    name: str,
    *,
    title: str,
    n: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Write ``<name>.csv`` and ``<name>.png`` (:func:`plot_matrix`) into ``directory``; with
    ``n`` (column → number of inputs) also ``<name>_cells.csv`` (:func:`matrix_cells`: counts
    and Wilson intervals), drawn in the heat map's cells.

    Returns:
        One value per cell, keyed ``<name>/<row>/<column>``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    matrix.to_csv(directory / f"{name}.csv")
    intervals = None
    if n is not None:
        cells = matrix_cells(matrix, n)
        cells.to_csv(directory / f"{name}_cells.csv", index=False)
        shape = matrix.shape
        intervals = (
            cells["ci_low"].to_numpy().reshape(shape),
            cells["ci_high"].to_numpy().reshape(shape),
        )
    plot_matrix(matrix, directory / f"{name}.png", title=title, intervals=intervals)
    return {f"{name}/{row}/{col}": v for (row, col), v in matrix.stack().items()}
