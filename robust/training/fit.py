"""The training loop: cross-entropy on logits, seeded shuffling, per-epoch metrics.

Like Keras ``model.fit(shuffle=True, validation_data=...)`` as the seeds called it: the
training metrics of an epoch are averages over its batches while training (dropout on), the
validation metrics are computed after the epoch with dropout off, and the last epoch's weights
are kept (no early stopping, no best-epoch restore). Unlike the seeds, it is seeded: the same
``seed`` and initial weights give identical weights and metrics (bitwise on CPU; cuDNN may
add nondeterminism on CUDA).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from robust.errors import ConfigError, DataError
from robust.training.defaults import TrainConfig
from robust.training.optimizers import build_optimizer
from robust.utils import resolve_device

if TYPE_CHECKING:
    from robust.data import Split

_EVAL_BATCH = 1024
log = logging.getLogger("robust")


def _check_split(name: str, split: Split, num_classes: int | None) -> None:
    """Raise DataError unless ``split`` holds matching non-empty inputs and integer labels."""
    x, y = split.x, split.y
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise DataError(
            f"{name}.x and {name}.y must be tensors, but got {type(x).__name__} and "
            f"{type(y).__name__}"
        )
    if len(x) == 0 or y.dim() != 1 or len(x) != len(y):
        raise DataError(
            f"{name} must hold N ≥ 1 inputs and N labels of shape (N,), but got x of shape "
            f"{tuple(x.shape)} and y of shape {tuple(y.shape)}"
        )
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex:
        raise DataError(f"{name}.y must hold integer class labels, but has dtype {y.dtype}")
    if int(y.min()) < 0 or (num_classes is not None and int(y.max()) >= num_classes):
        raise DataError(
            f"{name}.y must hold labels in [0, {num_classes}), but they span "
            f"[{int(y.min())}, {int(y.max())}]"
        )


@torch.no_grad()
def _loss_and_accuracy(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (already in eval mode) on device tensors."""
    loss_sum = torch.zeros((), device=x.device)
    n_correct = torch.zeros((), dtype=torch.long, device=x.device)
    for xb, yb in zip(x.split(_EVAL_BATCH), y.split(_EVAL_BATCH), strict=True):
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        n_correct += (logits.argmax(1) == yb).sum()
    return loss_sum.item() / len(y), n_correct.item() / len(y)


@dataclass
class _Loop:
    """The set-up a training loop shares with the others (:func:`fit`, adversarial training):
    the model and data on the device, the optimizer, the seeded shuffling."""

    device: torch.device
    x: Tensor
    y: Tensor
    val: tuple[Tensor, Tensor] | None
    opt: torch.optim.Optimizer
    epochs: int
    batch_size: int
    seed: int
    shuffle_rng: torch.Generator

    @classmethod
    def start(
        cls,
        model: nn.Module,
        train: Split,
        val: Split | None,
        *,
        epochs: int,
        lr: float,
        batch_size: int,
        optimizer: str,
        seed: int,
        device: str | torch.device,
        check: Callable[[], None] | None = None,
    ) -> _Loop:
        """Check the arguments every loop takes, then the loop's own (``check()``); then move
        the model and the data to ``device`` once (batches index these tensors) and build the
        optimizer and the shuffling generator.

        Raises:
            ConfigError, DataError: an argument out of range, malformed splits.
        """
        TrainConfig(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size)
        if not isinstance(seed, Integral) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, but got {seed=}")
        num_classes = getattr(model, "spec", {}).get("num_classes")
        _check_split("train", train, num_classes)
        if val is not None:
            _check_split("val", val, num_classes)
        if check is not None:
            check()
        if batch_size > len(train.y):  # a user may mean full-batch training: said, not refused
            log.warning(
                "batch_size=%d is larger than the %d training inputs: every epoch is one "
                "full batch of %d",
                batch_size, len(train.y), len(train.y),
            )  # fmt: skip
        target = resolve_device(device)
        model.to(target)
        x, y = train.x.to(target), train.y.to(target, torch.long)
        val_xy = None if val is None else (val.x.to(target), val.y.to(target, torch.long))
        opt = build_optimizer(optimizer, model.parameters(), lr)
        # Seed the shuffling with a local generator (dropout: a forked global RNG, in running).
        shuffle_rng = torch.Generator().manual_seed(int(seed))
        return cls(target, x, y, val_xy, opt, epochs, batch_size, int(seed), shuffle_rng)

    def step(self, loss: Tensor) -> None:
        """One optimizer step down ``loss`` (the gradients cleared first)."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def batches(self) -> tuple[Tensor, ...]:
        """One epoch's batches of indices into ``x``: a fresh seeded permutation, split."""
        order = torch.randperm(len(self.y), generator=self.shuffle_rng).to(self.device)
        return order.split(self.batch_size)

    @contextlib.contextmanager
    def running(self, model: nn.Module, *, progress: bool) -> Iterator[tqdm]:
        """Train inside: the global RNG forked and seeded (dropout), grad on, a tqdm bar over
        every batch; afterwards the bar closes and the model's train/eval mode is restored."""
        rng_devices = []
        if self.device.type == "cuda":
            index = self.device.index
            rng_devices = [torch.cuda.current_device() if index is None else index]
        was_training = model.training
        bar = tqdm(
            total=self.epochs * math.ceil(len(self.y) / self.batch_size),
            unit="batch",
            file=sys.stderr,
            disable=not progress or not sys.stderr.isatty(),
        )
        try:
            with torch.random.fork_rng(devices=rng_devices), torch.enable_grad():
                torch.manual_seed(self.seed)
                yield bar
        finally:
            bar.close()
            model.train(was_training)


def fit(
    model: nn.Module,
    train: Split,
    val: Split | None = None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    optimizer: str = "rmsprop",
    seed: int = 0,
    device: str | torch.device = "auto",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place with cross-entropy on its logits.

    Args:
        model: outputs (N, num_classes) logits; moved to ``device`` and left there. Its
            train/eval mode is restored on return.
        train: split with x (N, C, H, W) float32 in [0, 1] and y (N,) int64.
        val: optional validation split, scored after every epoch with dropout off.
        epochs: passes over ``train``, ≥ 1.
        lr: learning rate, > 0.
        batch_size: inputs per step, ≥ 1 (the last batch of an epoch may be smaller).
        optimizer: ``rmsprop`` (Keras-equivalent), ``adam`` or ``sgd``; see
            :func:`~robust.training.optimizers.build_optimizer`.
        seed: seeds the shuffling (a local ``torch.Generator``) and dropout (the global RNG is
            forked for the call and restored afterwards, so the caller's stream is untouched).
        device: ``auto``, ``cpu``, ``cuda`` or a torch.device; the whole split is moved there
            once and batches are indexed from it.
        on_epoch: called as ``on_epoch(epoch, metrics)`` after each epoch, ``epoch`` counting
            from 1.
        progress: show a tqdm bar on stderr (never when stderr is not a terminal).

    Returns:
        One dict per epoch with ``train_loss``, ``train_accuracy`` and, with ``val``,
        ``val_loss`` and ``val_accuracy`` (losses are mean cross-entropy in nats).

    Raises:
        ConfigError: an argument out of range (the message gives the rule and the value).
        DataError: malformed splits or labels outside the model's classes.

    Example:
        >>> history = fit(model, ds.train, ds.val, epochs=30, lr=1e-3, batch_size=32,
        ...               optimizer="adam", progress=False)
        >>> history[-1]["val_accuracy"]
        0.97...
    """
    # Check every argument, then move everything to the device once.
    config = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer}
    loop = _Loop.start(model, train, val, seed=seed, device=device, **config)
    target, n_train = loop.device, len(loop.y)

    history: list[dict[str, float]] = []
    with loop.running(model, progress=progress) as bar:
        for epoch in range(1, epochs + 1):
            # Train one epoch over a fresh permutation, accumulating metrics on the device.
            model.train()
            bar.set_description(f"epoch {epoch}/{epochs}")
            loss_sum = torch.zeros((), device=target)
            n_correct = torch.zeros((), dtype=torch.long, device=target)
            for idx in loop.batches():
                xb, yb = loop.x[idx], loop.y[idx]
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                loop.step(loss)
                loss_sum += loss.detach() * len(idx)
                n_correct += (logits.detach().argmax(1) == yb).sum()
                bar.update()
            metrics = {
                "train_loss": loss_sum.item() / n_train,
                "train_accuracy": n_correct.item() / n_train,
            }
            end_epoch(model, loop.val, epoch, metrics, history, bar, on_epoch)
    return history


def end_epoch(
    model: nn.Module,
    val: tuple[Tensor, Tensor] | None,
    epoch: int,
    metrics: dict[str, float],
    history: list[dict[str, float]],
    bar,
    on_epoch: Callable[[int, dict[str, float]], None] | None,
) -> None:
    """Close an epoch of a training loop: validate with dropout off, record and report."""
    if val is not None:
        model.eval()
        metrics["val_loss"], metrics["val_accuracy"] = _loss_and_accuracy(model, *val)
    history.append(metrics)
    bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()})
    if on_epoch is not None:
        on_epoch(epoch, dict(metrics))
