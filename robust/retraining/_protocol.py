"""Seed 000's retraining protocol for one ordered pool and one seed: a model per budget step.

For each budget k (:func:`~robust.retraining.budgets`) a model starts from the configuration's
weights (c1: fresh, seeded; c2/c3: a copy of the original), trains with a fresh optimizer on
the top-k inputs of the configuration's order (:func:`~robust.retraining.training_order`),
validates on the clean validation split, keeps its last epoch's weights and is evaluated on
the clean test split, the adversarial test set and both combined (the seed's only measure),
and on the selection set (:attr:`EvalSets.val`) when there is one.

Differences from the seed code (notes §4–5), all deliberate:

* it is seeded: the seed fixes c1's initial weights (the same for every step and metric, so
  metrics compare paired), the shuffling and dropout;
* a budget's inputs are fed in pool order (``fit`` then shuffles them by the seed), so a model
  depends on *which* inputs were chosen, not on their rank inside the budget;
* clean and adversarial test accuracy are reported besides the combined one, and precision and
  recall are macro averages (the seed's were Keras threshold-0.5 micro metrics);
* the best step and model are chosen on validation accuracy (clean + adversarial validation
  inputs), and the test accuracy is reported at that choice; the seed read the best off the
  test curve itself, which is optimistic;
* ``warm_start=True`` is **not** the seed's protocol: step k continues from step k − 1's model
  and trains on the inputs step k adds only, so each input is trained on once per seed
  (about (steps + 1) / 2 times less training); the seed reloaded its start weights every step.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from robust import models
from robust.data import Split
from robust.errors import ConfigError, DataError
from robust.evaluation import classification_metrics, predict
from robust.retraining._budgets import _check_int, budgets, check_config, training_order
from robust.training import TrainConfig, fit
from robust.utils import model_device

QUANTITIES: tuple[str, ...] = (
    "accuracy_clean",
    "accuracy_adversarial",
    "accuracy_combined",
    "precision_macro",
    "recall_macro",
)
"""What :func:`evaluate_model` measures on the test sets (precision and recall on the combined
set)."""

SELECTION = "val_accuracy"
"""What :func:`evaluate_model` also measures when :attr:`EvalSets.val` is given: accuracy on the
selection set, on which the best step and the saved best model are chosen (never on test)."""


@dataclass(frozen=True, eq=False)
class Pool:
    """The retraining pool: clean and adversarial training inputs in one indexable set.

    Attributes:
        x: (N, C, H, W) float32 in [0, 1].
        y: (N,) int64 true labels.
        source: (N,) int64, 0 for a clean input, 1 for an adversarial one.
    """

    x: Tensor
    y: Tensor
    source: Tensor

    def __post_init__(self) -> None:
        Split(self.x, self.y)  # checks shapes and dtypes
        if (
            self.source.shape != self.y.shape
            or not torch.isin(self.source, torch.tensor([0, 1])).all()
        ):
            raise DataError(
                f"source must hold one 0 (clean) or 1 (adversarial) per input, but got shape "
                f"{tuple(self.source.shape)} for {len(self.y)} inputs"
            )

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def assemble(
        cls,
        source: Tensor,
        index: Tensor,
        clean: Split,
        adversarial: Split,
        y: Tensor | None = None,
    ) -> Pool:
        """Gather a pool described as the metric stage logs it (``guidance/pool.safetensors``).

        Args:
            source: (N,) 0 clean / 1 adversarial.
            index: (N,) clean: index into ``clean``; adversarial: into ``adversarial``.
            clean: the clean training split.
            adversarial: the attack run's adversarial training inputs and true labels.
            y: (N,) the labels the metric stage logged, checked against the gathered ones.

        Raises:
            DataError: an index out of range of its part, or labels that differ from ``y``
                (the pool was scored on another dataset or attack run).
        """
        source, index = source.long(), index.long()
        is_clean = source == 0
        hint = "is this the dataset and attack run the metric run scored?"
        for name, part, split in (
            ("clean", is_clean, clean),
            ("adversarial", ~is_clean, adversarial),
        ):
            if part.any() and (index[part].min() < 0 or index[part].max() >= len(split)):
                raise DataError(
                    f"the pool's {name} indices must lie in [0, {len(split)}), but span "
                    f"[{int(index[part].min())}, {int(index[part].max())}]; {hint}"
                )
        x = torch.empty((len(index), *clean.x.shape[1:]), dtype=clean.x.dtype)
        labels = torch.empty(len(index), dtype=torch.int64)
        for part, split in ((is_clean, clean), (~is_clean, adversarial)):
            x[part], labels[part] = split.x[index[part]], split.y[index[part]]
        if y is not None and not torch.equal(labels, y.long()):
            n_diff = int((labels != y.long()).sum())
            raise DataError(f"{n_diff} of the pool's labels differ from its inputs'; {hint}")
        return cls(x, labels, source)


@dataclass(frozen=True, eq=False)
class EvalSets:
    """The sets a retrained model is scored on: the clean and adversarial test sets, both
    combined, and optionally ``val``, the validation inputs the best step is chosen on (the
    clean validation split followed by an adversarial validation set, or the clean split
    alone); without it selection falls back to the combined test accuracy (the seed's)."""

    clean: Split
    adversarial: Split
    val: Split | None = None

    @cached_property
    def combined(self) -> Split:
        """The clean test split followed by the adversarial test set (seed's test+adv)."""
        return Split(
            torch.cat([self.clean.x, self.adversarial.x]),
            torch.cat([self.clean.y, self.adversarial.y]),
        )


@dataclass(frozen=True)
class Point:
    """One point of a retraining curve.

    Attributes:
        seed: the repetition's seed.
        step: budget step, 1 … steps; 0 is the original model (c2/c3's row 0).
        n_inputs: inputs the model was trained on (the budget k; 0 for row 0).
        n_adversarial: how many of them are adversarial.
        fit_s: wall time of the training, seconds (0 for row 0).
        scores: each of :data:`QUANTITIES` in [0, 1].
        original: which original model the point retrains from (0 … K − 1 when a study
            retrains from K independently trained originals; the unit of its intervals).
    """

    seed: int
    step: int
    n_inputs: int
    n_adversarial: int
    fit_s: float
    scores: Mapping[str, float] = field(default_factory=dict)
    original: int = 0

    def row(self) -> dict[str, float]:
        """Every quantity of the point, as one flat dict (a table row without the metric)."""
        return {
            "original": self.original,
            "seed": self.seed,
            "step": self.step,
            "n_inputs": self.n_inputs,
            "n_adversarial": self.n_adversarial,
            **self.scores,
            "fit_s": self.fit_s,
        }


def initial_model(original: nn.Module, config: str, seed: int) -> nn.Module:
    """The weights a configuration starts from, on the original's device.

    c1: a new model of the original's architecture (``original.spec``) whose initial weights
    are fixed by ``seed`` (the global RNG is forked, so the caller's stream is untouched);
    c2 and c3: a deep copy of the original (its weights; optimizers are made by ``fit``).

    Raises:
        ConfigError: unknown config, or c1 with a model that is not from the zoo.
    """
    check_config(config)
    seed = _check_int("seed", seed, 0)
    if config != "c1":
        return copy.deepcopy(original)
    spec = getattr(original, "spec", None)
    if not isinstance(spec, dict) or spec.get("architecture") not in models.MODELS:
        raise ConfigError(
            "config=c1 rebuilds the original's architecture, so the original must be a zoo "
            f"model with .spec, but got {type(original).__name__}"
        )
    model = models.build(spec["architecture"], spec["input_shape"], spec["num_classes"], seed=seed)
    model.spec = {**spec, **model.spec}
    return model.to(model_device(original))


def evaluate_model(
    model: nn.Module, sets: EvalSets, num_classes: int, *, batch_size: int = 1024
) -> dict[str, float]:
    """Accuracy on the clean, adversarial and combined test sets; macro precision and recall on
    the combined set (one forward pass over the combined set); with ``sets.val`` also the
    accuracy on it (:data:`SELECTION`).

    Returns:
        ``{q: value}`` for each of :data:`QUANTITIES` (and :data:`SELECTION`), floats in [0, 1].
    """
    combined = sets.combined
    pred = predict(model, combined.x, batch_size=batch_size).argmax(1)
    correct = (pred == combined.y).double()
    n_clean = len(sets.clean)
    m = classification_metrics(combined.y, pred, num_classes)
    scores = {
        "accuracy_clean": float(correct[:n_clean].mean()),
        "accuracy_adversarial": float(correct[n_clean:].mean()),
        "accuracy_combined": m["accuracy"],
        "precision_macro": m["precision_macro"],
        "recall_macro": m["recall_macro"],
    }
    if sets.val is not None:
        val_pred = predict(model, sets.val.x, batch_size=batch_size).argmax(1)
        scores[SELECTION] = float((val_pred == sets.val.y).double().mean())
    return scores


def retrain(
    original: nn.Module,
    pool: Pool,
    order: np.ndarray | Tensor,
    config: str,
    steps: int,
    *,
    train: TrainConfig,
    val: Split | None,
    tests: EvalSets,
    seed: int = 0,
    warm_start: bool = False,
    device: str | torch.device = "auto",
    fit_fn: Callable[..., Any] = fit,
) -> Iterator[tuple[Point, nn.Module]]:
    """Retrain on each budget of one ordered pool with one seed; yield each point and model.

    Args:
        original: the model the pool was scored with (zoo model, logits); never modified.
        pool: the clean + adversarial training inputs the order indexes.
        order: (N,) pool positions, highest guidance score first (the metric stage's order).
        config: ``c1``, ``c2`` or ``c3`` (:data:`~robust.retraining.CONFIGS`).
        steps: number of budget steps (:func:`~robust.retraining.budgets` of the order the
            configuration uses: N, or the adversarial count for c3).
        train: optimizer, lr, epochs and batch size of every training.
        val: the clean validation split (scored after each epoch), or None.
        tests: the sets each model is evaluated on.
        seed: fixes c1's initial weights, the shuffling and dropout.
        warm_start: chain the steps (not the seed's protocol, see the module docstring).
        device: where training runs (``auto``: CUDA when present).
        fit_fn: the training function, called like :func:`robust.training.fit` (tests
            substitute a recorder).

    Yields:
        ``(point, model)``: for c2 and c3 first the original itself at step 0 (the seed's
        row 0), then one trained model per step, in budget order. A model is the caller's to
        keep; with ``warm_start`` the next step trains it further, so copy it to keep it.

    Raises:
        ConfigError: unknown config, steps outside [1, budget pool size], or a bad seed.
        DataError: an order that is not a permutation of the pool.
    """
    positions, sizes, seed, num_classes = _plan(original, pool, order, config, steps, seed, tests)
    if config != "c1":
        yield Point(seed, 0, 0, 0, 0.0, evaluate_model(original, tests, num_classes)), original
    yield from _fits(
        original,
        pool,
        positions,
        list(enumerate(sizes.tolist(), start=1)),
        config=config,
        seed=seed,
        warm_start=warm_start,
        train=train,
        val=val,
        tests=tests,
        num_classes=num_classes,
        device=device,
        fit_fn=fit_fn,
    )


def _plan(
    original: nn.Module,
    pool: Pool,
    order: np.ndarray | Tensor,
    config: str,
    steps: int,
    seed: int,
    tests: EvalSets,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Check one seed's arguments; return its pool positions in training order, the budget
    sizes, the seed as an int and the number of classes (one forward pass of the original)."""
    positions = training_order(order, pool.source, config)
    if len(positions) == 0:
        raise ConfigError(f"config={config} trains on the pool's adversarial part, which is empty")
    sizes = budgets(len(positions), steps)
    seed = _check_int("seed", seed, 0)
    num_classes = int(predict(original, tests.clean.x[:1]).shape[1])
    return positions, sizes, seed, num_classes


def _fits(
    original: nn.Module,
    pool: Pool,
    positions: np.ndarray,
    steps: list[tuple[int, int]],
    *,
    config: str,
    seed: int,
    warm_start: bool,
    train: TrainConfig,
    val: Split | None,
    tests: EvalSets,
    num_classes: int,
    device: str | torch.device,
    fit_fn: Callable[..., Any] = fit,
) -> Iterator[tuple[Point, nn.Module]]:
    """Train and score one model per ``(step, k)`` of ``steps`` on the top-k ``positions``.

    The trained part of :func:`retrain`; a worker process runs it for one step, or for a
    seed's whole chain with ``warm_start`` (:class:`~robust.retraining.Workers`).
    """
    model, done = None, 0
    for step, k in steps:
        if warm_start and model is not None:
            chosen = positions[done:k]  # only what this step adds, onto the previous model
        else:
            model, chosen = initial_model(original, config, seed), positions[:k]
        chosen = torch.from_numpy(np.sort(chosen))  # pool order: the set matters, not ranks
        subset = Split(pool.x[chosen], pool.y[chosen])
        t0 = time.perf_counter()
        fit_fn(
            model,
            subset,
            val,
            epochs=train.epochs,
            lr=train.lr,
            batch_size=train.batch_size,
            optimizer=train.optimizer,
            seed=seed,
            device=device,
            progress=False,
        )
        fit_s = time.perf_counter() - t0
        n_adversarial = int(pool.source[torch.from_numpy(positions[:k])].sum())
        scores = evaluate_model(model, tests, num_classes)
        yield Point(seed, step, k, n_adversarial, fit_s, scores), model
        done = k
