"""How strong an adversarial set is against a model, and what it looks like."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from robust.models import predict


def attack_report(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    *,
    groups: Tensor | None = None,
    group_names: Sequence[str] = (),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Accuracy on the clean and adversarial inputs, success rate and perturbation sizes.

    Args:
        model: classifier returning logits.
        x: (N, C, H, W) clean inputs; x_adv: their adversarial versions; y: (N,) labels.

    Returns:
        ``clean_accuracy``, ``accuracy`` (on ``x_adv``), ``success_rate`` (prediction changed
        among the inputs the model classified correctly; 0 when it got none right),
        ``linf_mean``, ``linf_max``, ``l2_mean``, ``l2_max``; with ``groups`` ((N,) codes into
        ``group_names``, e.g. which attack made each input) also ``<name>/accuracy`` per group,
        from the same predictions.
    """
    pred = predict(model, x, batch_size=batch_size).argmax(1)
    pred_adv = predict(model, x_adv, batch_size=batch_size).argmax(1)
    correct = pred == y
    delta = (x_adv - x).flatten(1).float()
    linf, l2 = delta.abs().amax(1), delta.norm(dim=1)
    flipped = (pred_adv != pred) & correct
    report = {
        "clean_accuracy": float(correct.float().mean()),
        "accuracy": float((pred_adv == y).float().mean()),
        "success_rate": float(flipped.sum() / correct.sum()) if correct.any() else 0.0,
        "linf_mean": float(linf.mean()),
        "linf_max": float(linf.max()),
        "l2_mean": float(l2.mean()),
        "l2_max": float(l2.max()),
    }
    hit = (pred_adv == y).float()
    for code, name in enumerate(group_names if groups is not None else ()):
        mask = groups == code
        if mask.any():
            report[f"{name}/accuracy"] = float(hit[mask].mean())
    return report


def plot_adversarial_grid(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    classes: Sequence[str],
    path: str | Path,
    *,
    n: int = 8,
) -> Path:
    """PNG grid: rows = original, adversarial, perturbation (amplified), columns = inputs.

    Titles give the true label and the model's predictions before → after.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = min(n, len(x))
    pred = predict(model, x[:n]).argmax(1)
    pred_adv = predict(model, x_adv[:n]).argmax(1)
    delta = (x_adv[:n] - x[:n]).float()
    scale = float(delta.abs().max()) or 1.0
    fig = Figure(figsize=(1.6 * n, 5.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, n, squeeze=False)
    for j in range(n):
        rows = (_image(x[j]), _image(x_adv[j]), _image(0.5 + 0.5 * delta[j] / scale))
        for i, img in enumerate(rows):
            ax = axes[i][j]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][j].set_title(f"true {classes[int(y[j])]}", fontsize=8)
        axes[1][j].set_title(
            f"{classes[int(pred[j])]} → {classes[int(pred_adv[j])]}",
            fontsize=8,
            color="red" if pred_adv[j] != pred[j] else "black",
        )
    for i, label in enumerate(("original", "adversarial", f"δ ×{0.5 / scale:.1f}")):
        axes[i][0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _image(t: Tensor) -> np.ndarray:
    img = t.detach().cpu().clamp(0, 1).numpy()
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def report_adversarial_set(
    model: nn.Module,
    x: Tensor,
    adv: Any,
    classes: Sequence[str],
    grid: str | os.PathLike[str],
    *,
    by_attack: bool = False,
) -> dict[str, float]:
    """:func:`attack_report` of an adversarial set against its source inputs, and its grid.

    Args:
        model: the attacked classifier (logits).
        x: (N, C, H, W) the source inputs the set was crafted from (``split.x[adv.index]``).
        adv: a :class:`robust.attacks.AdversarialSet` (x, y, attack codes, names).
        classes: class names for the grid's captions.
        grid: where :func:`plot_adversarial_grid` writes its PNG.
        by_attack: also ``<name>/accuracy`` per attack of a mixed set (a preset).

    Returns:
        :func:`attack_report`'s keys and ``n_adv``.
    """
    names = adv.names if by_attack else ()
    report = attack_report(model, x, adv.x, adv.y, groups=adv.attack, group_names=names)
    plot_adversarial_grid(model, x, adv.x, adv.y, classes, grid)
    return report | {"n_adv": len(adv.x)}
