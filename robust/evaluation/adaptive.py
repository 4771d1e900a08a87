"""Adaptive evaluation: every attack crafted against each model itself, the worst case per
input over all of them, and what it breaks down to (per class, confusion).

A defence is only as robust as its worst input under the strongest attack that knows it
(Carlini et al. 2019, §3). :class:`Adaptive` names one attack by the name ``evaluate`` takes
(:data:`ADAPTIVE`: FGSM, PGD, APGD-CE, APGD-T, FAB-T, Square, AutoAttack) and crafts it;
:class:`AdaptiveDGN` trains seed 004's generators further against each model (from an attack
run's generators, :func:`robust.attacks.dgn.train` with ``init``) before generating.
:func:`evaluate_adaptive` runs them all on every model and keeps, per input, whether any of
them fooled it: the ``worst case`` column is the accuracy no listed attack brought down, the
per-class accuracies and the confusion matrix are taken under that worst case.

Everything here is pure of MLflow: models and tensors in, DataFrames and arrays out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from robust.attacks import apgd, autoattack, check_eps, fab, fgsm, pgd, square
from robust.attacks._norms import check_norm
from robust.attacks.autoattack import EOT_ITER
from robust.errors import ConfigError, DataError
from robust.models import predict

if TYPE_CHECKING:
    import pandas as pd

    from robust.attacks.dgn import Generators

ADAPTIVE = (
    "fgsm", "pgd", "apgd-ce", "apgd-t", "fab-t", "square", "autoattack", "autoattack-rand",
)  # fmt: skip
"""Attacks :class:`Adaptive` crafts: white-box gradient attacks, the score-based Square,
AutoAttack's standard ensemble (APGD-CE, APGD-T, FAB-T, Square on the inputs still robust)
and its ``rand`` version for randomised models (APGD-CE, APGD-DLR, 20 draws per step)."""

WORST = "worst case"
"""The column of inputs no listed attack fooled (:func:`evaluate_adaptive`)."""

_STEPS = {"pgd": 20}
"""Default iterations: PGD's 20 (seed 004's evaluation); 100 for APGD, FAB and AutoAttack."""


class Crafter(Protocol):
    """Anything with ``craft(model, x, y, *, batch_size)`` returning adversarial inputs within
    its budget and in [0, 1]: :class:`Adaptive`, :class:`AdaptiveDGN`,
    :class:`robust.attacks.AttackSpec`."""

    def craft(
        self, model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int | None = None
    ) -> Tensor: ...


def _count(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"{name} must be an integer of at least {low}, but got {name}={value!r}")


@dataclass(frozen=True)
class Adaptive:
    """One attack of :data:`ADAPTIVE` with its settings; :meth:`craft` runs it.

    Attributes:
        name: an entry of :data:`ADAPTIVE`.
        eps: budget in ``norm`` (L∞ at most 1; L2 checked against the inputs' size).
        norm: ``inf`` or ``2``.
        steps: iterations of pgd (default 20), apgd-ce, apgd-t, fab-t and autoattack's
            APGD/FAB (default 100, AutoAttack's).
        restarts: pgd's and apgd-ce's restarts (AutoAttack's standard ensemble keeps its own:
            one restart, nine target classes).
        n_queries: Square's queries per input (also inside autoattack), AutoAttack's 5000.
        seed: every random draw's seed.

    Example:
        >>> x_adv = Adaptive("autoattack", 0.3).craft(model, x, y)
    """

    name: str
    eps: float
    norm: str = "inf"
    _: KW_ONLY
    steps: int | None = None
    restarts: int = 1
    n_queries: int = 5000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ADAPTIVE:
            raise ConfigError(
                f"adaptive attacks must be among {', '.join(ADAPTIVE)}, but got {self.name!r}"
            )
        object.__setattr__(self, "norm", check_norm(self.norm))
        if self.norm not in ("inf", "2"):
            raise ConfigError(f"norm must be inf or 2, but got norm={self.norm!r}")
        if (
            isinstance(self.eps, bool)
            or not isinstance(self.eps, Real)
            or not (0 <= self.eps < math.inf)
        ):
            raise ConfigError(f"eps must be a finite number of at least 0, got eps={self.eps!r}")
        check_eps(self.eps, self.norm)
        if self.steps is not None:
            _count("steps", self.steps, 1)
        _count("restarts", self.restarts, 1)
        _count("n_queries", self.n_queries, 1)
        _count("seed", self.seed, 0)

    @property
    def iterations(self) -> int:
        """The steps this attack runs (its default when ``steps`` is None)."""
        return self.steps if self.steps is not None else _STEPS.get(self.name, 100)

    def craft(
        self, model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int | None = None
    ) -> Tensor:
        """Adversarial versions of ``x`` against ``model``, within ``eps`` and in [0, 1]."""
        check_eps(self.eps, self.norm, x[0].numel() if len(x) else None)
        common = {"seed": self.seed, "batch_size": batch_size}
        steps, restarts = self.iterations, self.restarts
        match self.name:
            case "fgsm":
                return fgsm(model, x, y, self.eps, self.norm, batch_size=batch_size)
            case "pgd":
                return pgd(model, x, y, self.eps, steps, None, self.norm, restarts=restarts,
                           **common)  # fmt: skip
            case "apgd-ce":
                return apgd(model, x, y, self.eps, self.norm, "ce", steps=steps,
                            restarts=restarts, **common)  # fmt: skip
            case "apgd-t":
                return apgd(model, x, y, self.eps, self.norm, "dlr", targeted=True, steps=steps,
                            **common)  # fmt: skip
            case "fab-t":
                return fab(model, x, y, self.eps, self.norm, steps=steps, **common)
            case "square":
                return square(model, x, y, self.eps, self.norm, n_queries=self.n_queries,
                              **common)  # fmt: skip
        version = "rand" if self.name == "autoattack-rand" else "standard"
        result = autoattack(model, x, y, self.eps, self.norm, version, steps=steps,
                            n_queries=self.n_queries, **common)  # fmt: skip
        return result.x_adv

    def describe(self) -> dict[str, Any]:
        """The settings this attack uses (for a run's labels)."""
        out: dict[str, Any] = {"method": self.name, "eps": self.eps, "norm": self.norm}
        if self.name != "fgsm":
            out["seed"] = self.seed
        if self.name not in ("fgsm", "square"):
            out["steps"] = self.iterations
        if self.name in ("pgd", "apgd-ce"):
            out["restarts"] = self.restarts
        if self.name in ("square", "autoattack"):  # rand runs no Square
            out["n_queries"] = self.n_queries
        if self.name == "autoattack":
            out["attacks"] = "apgd-ce,apgd-t,fab-t,square"
        if self.name == "autoattack-rand":
            out |= {"attacks": "apgd-ce,apgd-dlr", "eot_iter": EOT_ITER}
        return out


@dataclass(frozen=True)
class AdaptiveDGN:
    """Seed 004's DGN generators trained further against each model before generating
    (:func:`robust.attacks.dgn.train_further`): the adaptive version of a DGN attack, whose
    generators, trained once against the original only, would otherwise just transfer.

    Attributes:
        init: the attack run's trained generators (the start; never changed).
        x, y: the inputs the generators train on (the attack run's split of the same data).
        epochs: further DGN epochs against each model, ≥ 1.
        route: which generator each test input goes to (``label`` or ``prediction``).
        seed: the training's seed.

    Example:
        >>> x_adv = AdaptiveDGN(dgn.load("generators"), ds.train.x, ds.train.y).craft(model, x, y)
    """

    init: Generators = field(repr=False)
    x: Tensor = field(repr=False)
    y: Tensor = field(repr=False)
    epochs: int = 10
    route: str = "label"
    seed: int = 0

    def __post_init__(self) -> None:
        _count("epochs", self.epochs, 1)
        _count("seed", self.seed, 0)

    @property
    def eps(self) -> float:
        return float(self.init.eps)

    def craft(
        self, model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int | None = None
    ) -> Tensor:
        """Generators trained from ``init`` against ``model``, then ``x`` through them."""
        from robust.attacks import AttackSpec, dgn

        device = next(model.parameters()).device
        x_train, y_train = self.x.to(device), self.y.to(device)
        gens = dgn.train_further(
            self.init.to(device), model, x_train, y_train, epochs=self.epochs, seed=self.seed
        )
        spec = AttackSpec("dgn", gens.eps, generators=gens, route=self.route)
        return spec.craft(model, x, y, batch_size=batch_size)

    def describe(self) -> dict[str, Any]:
        """The generators' loss and budget, and the further training's settings."""
        return {"method": "dgn", "loss": self.init.spec.get("loss"), "eps": self.eps,
                "norm": "inf", "epochs": self.epochs, "route": self.route,
                "seed": self.seed}  # fmt: skip


@dataclass
class AdaptiveEvaluation:
    """What :func:`evaluate_adaptive` found.

    Attributes:
        matrix: rows models, columns ``clean``, each attack and (with two or more attacks)
            :data:`WORST`; cells accuracy in [0, 1] over ``n`` inputs.
        n: the number of test inputs (every cell's denominator).
        per_class: rows models, columns class indices, the accuracy under the worst case
            among each class's inputs; ``class_sizes`` holds their denominators.
        confusion: row label → (K, K) counts, true class × prediction under the worst case
            (an input no attack fooled counts as its clean prediction).
        worst_by: row label → (N,) int: −1 wrong without attack, 0 robust, k ≥ 1 first fooled
            by the k-th attack (in ``matrix``'s attack order).
    """

    matrix: pd.DataFrame
    n: int
    per_class: pd.DataFrame
    class_sizes: np.ndarray
    confusion: dict[str, np.ndarray]
    worst_by: dict[str, Tensor]


def _labels(y: Tensor) -> Tensor:
    return torch.as_tensor(y).to("cpu", torch.int64)


def evaluate_adaptive(
    models: Mapping[str, nn.Module],
    x: Tensor,
    y: Tensor,
    attacks: Mapping[str, Crafter],
    *,
    batch_size: int | None = None,
    progress: Any = None,
) -> AdaptiveEvaluation:
    """Craft every attack against every model itself and score them, per input worst case.

    Args:
        models: row label → classifier returning logits (attacked on its own device).
        x: (N, C, H, W) float32 in [0, 1], the clean test inputs; y: (N,) int labels.
        attacks: column label → a :class:`Crafter` (e.g. :class:`Adaptive`).
        batch_size: inputs per pass for the attacks (None: their automatic size) and
            predictions (None: 1024).
        progress: called as ``progress(row, column)`` after each cell (e.g. a bar's update).

    Returns:
        :class:`AdaptiveEvaluation`.

    Raises:
        ConfigError: no model, no attack, or an attack labelled ``clean`` or :data:`WORST`.
        DataError: x and y differ in length or are empty.

    Example:
        >>> attacks = {"pgd": Adaptive("pgd", 0.3), "aa": Adaptive("autoattack", 0.3)}
        >>> result = evaluate_adaptive({"original": model}, x, y, attacks)
        >>> result.matrix.loc["original", "worst case"]
    """
    import pandas as pd

    if not models:
        raise ConfigError("models must map at least one row label to a model, but got none")
    if not attacks:
        raise ConfigError("attacks must map at least one column label to an attack, but got none")
    for reserved in ("clean", WORST):
        if reserved in attacks:
            raise ConfigError(f"attacks must not be labelled {reserved!r} (a column of its own)")
    if len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"the test set must hold the same number N ≥ 1 of inputs and labels, but got "
            f"{len(x)} inputs and {len(y)} labels"
        )
    labels = _labels(y)
    n = len(labels)
    size = batch_size or 1024
    columns = ["clean", *attacks] + ([WORST] if len(attacks) > 1 else [])
    cells: dict[str, dict[str, float]] = {}
    confusion: dict[str, np.ndarray] = {}
    worst_by: dict[str, Tensor] = {}
    per_class: dict[str, np.ndarray] = {}
    classes = None
    for row, model in models.items():
        logits = predict(model, x, batch_size=size)
        classes = classes or logits.shape[1]
        clean_pred = logits.argmax(1).cpu()
        preds = []
        for col, attack in attacks.items():
            x_adv = attack.craft(model, x, y, batch_size=batch_size)
            preds.append(predict(model, x_adv, batch_size=size).argmax(1).cpu())
            del x_adv  # one adversarial set in memory at a time
            if progress is not None:
                progress(row, col)
        stacked = torch.stack(preds)  # (A, N)
        fooled = stacked != labels
        first = fooled.to(torch.int8).argmax(0)  # the first attack that fooled each input
        any_fooled = fooled.any(0)
        by = torch.where(any_fooled, first.to(torch.int64) + 1, 0)
        by[clean_pred != labels] = -1
        worst_pred = torch.where(any_fooled, stacked[first, torch.arange(n)], clean_pred)
        worst_pred[by == -1] = clean_pred[by == -1]
        cells[row] = {"clean": int((clean_pred == labels).sum()) / n}
        cells[row] |= {
            col: int((p == labels).sum()) / n for col, p in zip(attacks, preds, strict=True)
        }
        if len(attacks) > 1:
            cells[row][WORST] = int((by == 0).sum()) / n
        k = max(classes, int(labels.max()) + 1, int(worst_pred.max()) + 1)
        conf = np.zeros((k, k), dtype=np.int64)
        np.add.at(conf, (labels.numpy(), worst_pred.numpy()), 1)
        confusion[row], worst_by[row] = conf, by
        per_class[row] = np.bincount(labels[by == 0].numpy(), minlength=k)
    k = max(len(v) for v in per_class.values())
    sizes = np.bincount(labels.numpy(), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {r: np.pad(v, (0, k - len(v))) / sizes for r, v in per_class.items()}
    frame = pd.DataFrame.from_dict(cells, orient="index", columns=columns, dtype=np.float64)
    frame.index.name, frame.columns.name = "model", "attack"
    by_class = pd.DataFrame.from_dict(shares, orient="index", columns=list(range(k)))
    by_class.index.name, by_class.columns.name = "model", "class"
    return AdaptiveEvaluation(frame, n, by_class, sizes, confusion, worst_by)
