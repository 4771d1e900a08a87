"""ε-robustness curves: each model's worst-case robust accuracy as the budget grows.

One number at one ε hides how fast a defence gives way; the curve from ε = 0 (clean
accuracy) up shows it, and a curve that stays high at an ε where every input can be moved to
another class is the first sign of a masked gradient (:mod:`robust.evaluation.masking`).
Every point is :func:`robust.evaluation.evaluate_adaptive`'s worst case over the attacks
``make(ε)`` returns, with its count and Wilson 95 % interval.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from robust.errors import ConfigError, DataError
from robust.evaluation.adaptive import WORST, Crafter, evaluate_adaptive
from robust.evaluation.intervals import wilson
from robust.models import predict

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("model", "eps", "correct", "n", "accuracy", "ci_low", "ci_high")


def eps_curve(
    models: Mapping[str, nn.Module],
    x: Tensor,
    y: Tensor,
    make: Callable[[float], Mapping[str, Crafter]],
    eps: Sequence[float],
    *,
    batch_size: int | None = None,
    progress: Any = None,
) -> pd.DataFrame:
    """Worst-case robust accuracy of every model at every ε (ε = 0 is clean accuracy).

    Args:
        models: row label → classifier.
        x, y: the clean test inputs and labels.
        make: ε → the attacks to run at that budget (column label → crafter).
        eps: the budgets, each ≥ 0 (sorted here; 0 is added when missing).
        batch_size, progress: as for :func:`evaluate_adaptive`.

    Returns:
        Long DataFrame with :data:`COLUMNS`, one row per model and ε (ascending).
    """
    import pandas as pd

    if not eps:
        raise ConfigError("eps must list at least one budget, but got none")
    if any(e < 0 for e in eps):
        raise ConfigError(f"eps must be at least 0, but got {list(eps)}")
    budgets = sorted({float(e) for e in eps} - {0.0})
    rows, clean = [], None
    for e in budgets:
        attacks = make(e)
        result = evaluate_adaptive(models, x, y, attacks, batch_size=batch_size,
                                   progress=progress)  # fmt: skip
        clean = result.matrix["clean"] if clean is None else clean
        column = WORST if len(attacks) > 1 else next(iter(attacks))
        rows += [(m, e, round(a * result.n), result.n) for m, a in result.matrix[column].items()]
    if clean is None:  # only ε = 0 was asked for: no attack to run
        labels = torch.as_tensor(y).cpu()
        clean = {m: int((predict(f, x).argmax(1).cpu() == labels).sum()) / len(labels)
                 for m, f in models.items()}  # fmt: skip
    rows = [(m, 0.0, round(a * len(y)), len(y)) for m, a in dict(clean).items()] + rows
    frame = pd.DataFrame(rows, columns=list(COLUMNS[:4]))
    frame["accuracy"] = frame["correct"] / frame["n"]
    frame["ci_low"], frame["ci_high"] = wilson(frame["correct"].to_numpy(), frame["n"].to_numpy())
    return frame


def plot_eps_curve(
    curve: pd.DataFrame, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write the curves as a PNG: one line per model with its Wilson band (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    missing = set(COLUMNS) - set(curve.columns)
    if curve.empty or missing:
        raise DataError(f"curve must be a non-empty frame with columns {', '.join(COLUMNS)}")
    models = list(dict.fromkeys(curve["model"]))
    fig = Figure(figsize=(7.5, 4.5 + 0.12 * max(0, len(models) - 8)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for model in models:
        part = curve[curve["model"] == model].sort_values("eps")
        (line,) = ax.plot(part["eps"], 100 * part["accuracy"], marker="o", ms=3, label=model)
        ax.fill_between(part["eps"], 100 * part["ci_low"], 100 * part["ci_high"],
                        color=line.get_color(), alpha=0.15)  # fmt: skip
    ax.set(xlabel="ε", ylabel="robust accuracy (%)", ylim=(-2, 102))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncol=1 + len(models) // 12)
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
