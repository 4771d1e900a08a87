"""Adversarial training: α·CE(f(x), y) + (1 − α)·CE(f(x_adv), y), static or online; TRADES.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
https://arxiv.org/abs/1412.6572 (the mixed loss); Madry et al., "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083 (PGD inputs
regenerated against the model being trained). Seed 004 (``adversarial_train.py``, code notes
§4–5) trains a fresh network with α = 0.5 on a **static** set: each clean training input is
paired with its own counterpart, generated once against the original model.

:func:`adversarial_fit` does both. Static: ``x_adv`` aligned with ``train.x``; pairs are
shuffled together. Online: ``attack(model, x, y) -> x_adv`` regenerates the adversarial inputs
against the model being trained, for every batch or for the whole training set at the start of
every epoch. Online DGN (:func:`dgn_attack`) continues training the generators against the
current model every epoch before regenerating; with frozen generators it would only repeat the
static set.

Differences from the seed code, on purpose: batches are shuffled with a seeded generator (the
seed did not shuffle) and the last, partial batch is kept; the optimizer, learning rate and
epochs are the caller's (the pipeline uses the target model's defaults, the seed Adam with its
own table); the clean and adversarial terms each get their own forward pass, as the seed's
two applications of the network did. Otherwise the loop is :func:`robust.training.fit`'s:
with α = 1 it gives exactly the weights and history of ``fit`` with the same arguments (the
attack is not even called).

``objective="trades"`` trains on TRADES's CE(f(x), y) + β·KL(softmax f(x) ‖ softmax f(x_adv))
instead (Zhang et al., ICML 2019, https://arxiv.org/abs/1901.08573; :mod:`.trades`), usually
with :func:`trades_attack`, the online attack that maximises that KL term.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robust.attacks import AttackSpec, dgn
from robust.errors import ConfigError, DataError
from robust.training.fit import _Loop, end_epoch
from robust.training.trades import check_beta, check_trades_pgd, trades_kl, trades_pgd

if TYPE_CHECKING:
    from robust.data import Split

EVERY = ("batch", "epoch")
"""When an online attack regenerates: for each batch, or for the training set each epoch."""

OBJECTIVES = ("mixed", "trades")
"""What adversarial training minimises: the α-mix of two cross-entropies, or TRADES's."""


class OnlineAttack(Protocol):
    """``attack(model, x, y) -> x_adv``: adversarial inputs against the model as it is now.

    x: (N, C, H, W) float32 in [0, 1] on the training device; y: (N,) int64. Returns a tensor of
    x's shape. It must not change the model's weights nor leave it in another mode (the attacks
    of :mod:`robust.attacks` run in eval mode and restore the mode).
    """

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor: ...


def adversarial_fit(
    model: nn.Module,
    train: Split,
    val: Split | None = None,
    *,
    x_adv: Tensor | None = None,
    attack: OnlineAttack | None = None,
    every: str = "batch",
    epochs: int,
    lr: float,
    batch_size: int,
    optimizer: str = "rmsprop",
    alpha: float | None = None,
    objective: str = "mixed",
    beta: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place on α·CE(f(x), y) + (1 − α)·CE(f(x_adv), y) of its logits, or
    on TRADES's CE(f(x), y) + β·KL(softmax f(x) ‖ softmax f(x_adv)).

    Give exactly one of ``x_adv`` (static) and ``attack`` (online).

    Args:
        model: outputs (N, num_classes) logits; moved to ``device`` and left there. Its
            train/eval mode is restored on return.
        train: split with x (N, C, H, W) float32 in [0, 1] and y (N,) int64.
        val: optional validation split (clean), scored after every epoch with dropout off.
        x_adv: static adversarial inputs, (N, C, H, W) like ``train.x``: ``x_adv[i]`` is the
            counterpart of ``train.x[i]`` and is batched with it (seed 004).
        attack: online attack ``attack(model, x, y) -> x_adv`` (:func:`online_attack` of an
            :class:`~robust.attacks.AttackSpec`, :func:`fgsm_attack`, :func:`pgd_attack`,
            :func:`dgn_attack` or your own), called against the model being trained.
        every: online only: ``batch`` calls ``attack`` on each batch just before its step;
            ``epoch`` calls it on the whole training set at the start of each epoch.
        alpha: ``mixed`` only: weight α of the clean term, in [0, 1]; 1 is clean training
            (``attack`` is never called), 0 adversarial inputs only; None: 0.5 (seed 004).
        objective: ``mixed`` (the α-mix) or ``trades`` (pair it with :func:`trades_attack`,
            TRADES's own inner maximisation; any other attack gives a TRADES variant).
        beta: ``trades`` only: weight β of the KL term (:func:`.trades.trades_kl`), ≥ 0;
            None: 6.0 (the reference's on CIFAR-10; it took 1 on MNIST).
        epochs, lr, batch_size, optimizer, seed, device, on_epoch, progress: as for
            :func:`robust.training.fit`.

    Returns:
        One dict per epoch with ``train_loss`` (the objective), ``train_accuracy`` (on the
        clean inputs, dropout on) and, with ``val``, ``val_loss`` and ``val_accuracy``; with
        α < 1 or ``trades`` also ``train_clean_loss`` (CE on the clean inputs),
        ``train_adversarial_loss`` (``mixed``: CE on the adversarial inputs; ``trades``: the
        KL term **before** its weight β, so ``train_loss = train_clean_loss + β ·
        train_adversarial_loss``) and ``train_adversarial_accuracy`` (on the adversarial
        inputs), and online also ``train_attack_s`` (seconds spent in ``attack`` during the
        epoch). With α = 1 the history equals ``fit``'s.

    Raises:
        ConfigError: an argument out of range, both or neither of ``x_adv`` and ``attack``,
            ``x_adv`` not aligned with ``train.x``, ``alpha`` with ``trades`` or ``beta`` with
            ``mixed``.
        DataError: malformed splits, or an attack returning inputs of the wrong shape.

    Example:
        >>> attack = pgd_attack(eps=0.3, steps=10, seed=0)
        >>> history = adversarial_fit(model, ds.train, ds.val, attack=attack, epochs=30,
        ...                           lr=1e-3, batch_size=32, optimizer="adam")
        >>> adversarial_fit(model, ds.train, attack=trades_attack(0.3), objective="trades",
        ...                 beta=6.0, epochs=30, lr=1e-3, batch_size=32, optimizer="adam")
    """
    # Check every argument (fit's, then the mix's), then move everything to the device once.
    config = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer}
    check = functools.partial(_check_mix, train, x_adv, attack, every, alpha, objective, beta)
    loop = _Loop.start(model, train, val, seed=seed, device=device, check=check, **config)
    target, x_train, y_train, n_train = loop.device, loop.x, loop.y, len(loop.y)
    adv_train = x_adv.to(target, x_train.dtype) if x_adv is not None else None
    trades = objective == "trades"
    alpha = 0.5 if alpha is None else alpha
    beta = 6.0 if beta is None else beta
    # α = 1 is clean training: no adversarial input is made or used
    adversarial = trades or alpha < 1
    online = attack is not None and adversarial
    history: list[dict[str, float]] = []

    def run_attack(x: Tensor, y: Tensor) -> Tensor:
        """The online attack on (x, y), checked and detached, its time added to the epoch's."""
        nonlocal attack_s
        t0 = time.perf_counter()
        out = attack(model, x, y)
        if not isinstance(out, Tensor) or out.shape != x.shape:
            raise DataError(
                f"attack must return a tensor of the inputs' shape {tuple(x.shape)}, but "
                f"returned {type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}"
            )
        out = out.detach().to(target, x.dtype)
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        attack_s += time.perf_counter() - t0
        return out

    with loop.running(model, progress=progress) as bar:
        for epoch in range(1, epochs + 1):
            # Regenerate the epoch's adversarial inputs against the current model.
            attack_s = 0.0
            bar.set_description(f"epoch {epoch}/{epochs}")
            if online and every == "epoch":
                adv_train = run_attack(x_train, y_train)

            # Train one epoch over a fresh permutation, accumulating metrics on the device.
            model.train()
            loss_sum = torch.zeros((), device=target)
            n_correct = torch.zeros((), dtype=torch.long, device=target)
            clean_sum = torch.zeros((), device=target)
            adv_sum = torch.zeros((), device=target)
            n_adv_correct = torch.zeros((), dtype=torch.long, device=target)
            for idx in loop.batches():
                xb, yb = x_train[idx], y_train[idx]
                if adversarial:  # the pair of each clean input, made before the clean pass
                    xb_adv = run_attack(xb, yb) if online and every == "batch" else adv_train[idx]
                if trades or alpha > 0:
                    logits = model(xb)
                    clean_loss = F.cross_entropy(logits, yb)
                else:  # the clean term has no weight: forward only for the metrics
                    with torch.no_grad():
                        logits = model(xb)
                        clean_loss = F.cross_entropy(logits, yb)
                if trades:  # the KL term pulls f(x) and f(x_adv) together, through both
                    logits_adv = model(xb_adv)
                    adv_loss = trades_kl(logits, logits_adv)
                    loss = clean_loss + beta * adv_loss
                elif adversarial:
                    logits_adv = model(xb_adv)
                    adv_loss = F.cross_entropy(logits_adv, yb)
                    loss = adv_loss if alpha == 0 else alpha * clean_loss + (1 - alpha) * adv_loss
                else:
                    loss = clean_loss
                loop.step(loss)
                loss_sum += loss.detach() * len(idx)
                n_correct += (logits.detach().argmax(1) == yb).sum()
                if adversarial:
                    clean_sum += clean_loss.detach() * len(idx)
                    adv_sum += adv_loss.detach() * len(idx)
                    n_adv_correct += (logits_adv.detach().argmax(1) == yb).sum()
                bar.update()
            metrics = {
                "train_loss": loss_sum.item() / n_train,
                "train_accuracy": n_correct.item() / n_train,
            }
            if adversarial:
                metrics["train_clean_loss"] = clean_sum.item() / n_train
                metrics["train_adversarial_loss"] = adv_sum.item() / n_train
                metrics["train_adversarial_accuracy"] = n_adv_correct.item() / n_train
            if online:
                metrics["train_attack_s"] = attack_s

            end_epoch(model, loop.val, epoch, metrics, history, bar, on_epoch)
    return history


def _check_mix(
    train: Split,
    x_adv: Tensor | None,
    attack: OnlineAttack | None,
    every: str,
    alpha: float | None,
    objective: str,
    beta: float | None,
) -> None:
    """Raise a ConfigError unless the objective is a choice with its own weight only (α for
    ``mixed``, β for ``trades``), ``every`` a choice, and exactly one adversarial source is
    given, and fits."""
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"objective must be one of {', '.join(OBJECTIVES)}, but got {objective=}"
        )
    if objective == "trades" and alpha is not None:
        raise ConfigError(
            "alpha weighs the mixed objective only (TRADES weighs its KL term with beta): "
            f"leave it None with objective='trades', but got {alpha=}"
        )
    if objective == "mixed" and beta is not None:
        raise ConfigError(
            "beta weighs the KL term of objective='trades' only: leave it None with "
            f"objective='mixed', but got {beta=}"
        )
    if alpha is not None and (
        not isinstance(alpha, Real)
        or isinstance(alpha, bool)
        or not math.isfinite(alpha)
        or not 0 <= alpha <= 1
    ):
        raise ConfigError(f"alpha must be a number in [0, 1], but got {alpha=}")
    if beta is not None:
        check_beta(beta)
    if every not in EVERY:
        raise ConfigError(f"every must be one of {', '.join(EVERY)}, but got {every=}")
    if (x_adv is None) == (attack is None):
        given = "both" if x_adv is not None else "neither"
        raise ConfigError(
            "give exactly one of x_adv (static adversarial inputs) and attack (online), but "
            f"got {given}"
        )
    if attack is not None:
        if not callable(attack):
            raise ConfigError(
                "attack must be callable as attack(model, x, y) -> x_adv, but got "
                f"{type(attack).__name__}"
            )
        if every == "batch" and getattr(attack, "epoch_only", False):
            raise ConfigError(
                f"{type(attack).__name__} regenerates the whole training set once per epoch: "
                f"use every='epoch', but got {every=}"
            )
        return
    if not isinstance(x_adv, Tensor) or not x_adv.is_floating_point():
        raise ConfigError(
            f"x_adv must be a float tensor, but got {type(x_adv).__name__} of dtype "
            f"{getattr(x_adv, 'dtype', None)}"
        )
    if x_adv.shape != train.x.shape:
        raise ConfigError(
            f"x_adv must pair one adversarial input with each training input, shape "
            f"{tuple(train.x.shape)}, but got shape {tuple(x_adv.shape)}"
        )


# ---- online attacks -------------------------------------------------------------------------


def online_attack(spec: AttackSpec, *, batch_size: int | None = None) -> OnlineAttack:
    """An online attack that crafts ``spec`` against the model being trained.

    The k-th call (k from 0) crafts ``dataclasses.replace(spec, seed=f(spec.seed, k))``, so
    each batch gets its own random start and a rerun repeats exactly.

    Args:
        spec: a gradient attack (``fgsm``, ``pgd`` or ``bim``); online DGN is
            :func:`dgn_attack`, which also trains the generators.
        batch_size: inputs per attack pass; None picks one for the device.

    Returns:
        ``attack(model, x, y) -> x_adv`` for :func:`adversarial_fit`; ``attack.calls`` counts
        its calls and ``attack.spec`` is ``spec``.

    Raises:
        ConfigError: ``spec`` is not an AttackSpec of fgsm, pgd or bim.

    Example:
        >>> attack = online_attack(AttackSpec("pgd", 0.3, steps=10))
    """
    if not isinstance(spec, AttackSpec) or spec.method == "dgn":
        got = f"method={spec.method!r}" if isinstance(spec, AttackSpec) else type(spec).__name__
        raise ConfigError(
            f"spec must be an AttackSpec of fgsm, pgd or bim (online DGN is dgn_attack), but "
            f"got {got}"
        )
    return _Online(spec, batch_size)


def fgsm_attack(eps: float, norm: str = "inf", *, batch_size: int | None = None) -> OnlineAttack:
    """Online FGSM (Goodfellow et al.'s adversarial training): one gradient step of size ε.

    Args:
        eps: budget in ``norm``, ≥ 0.
        norm: ``inf``, ``2`` or ``1``.
        batch_size: inputs per attack pass; None picks one for the device.

    Returns:
        :func:`online_attack` of ``AttackSpec("fgsm", eps, norm)``.

    Example:
        >>> adversarial_fit(model, ds.train, attack=fgsm_attack(0.3), every="batch", ...)
    """
    return online_attack(AttackSpec("fgsm", _as_float(eps), norm), batch_size=batch_size)


def pgd_attack(
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "inf",
    *,
    random_start: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
) -> OnlineAttack:
    """Online PGD (Madry et al.): ``steps`` projected steps from a seeded random start.

    The random start of the k-th call is seeded with a function of ``seed`` and k, so each
    batch gets its own start and a rerun repeats exactly.

    Args:
        eps: budget in ``norm``, ≥ 0.
        steps: iterations, ≥ 1; each costs one forward and backward pass of the batch, so
            a training step costs about ``steps + 2`` clean ones.
        step_size: absolute step; None means 2.5·ε/steps.
        norm: ``inf``, ``2`` or ``1``.
        random_start: start from a uniform point of the ε-ball (else from x: BIM).
        seed: seed of the random starts.
        batch_size: inputs per attack pass; None picks one for the device.

    Returns:
        :func:`online_attack` of the matching ``AttackSpec("pgd", ...)``.

    Example:
        >>> attack = pgd_attack(eps=0.3, steps=10, seed=0)
    """
    spec = AttackSpec(
        "pgd", _as_float(eps), norm, steps=steps, step_size=step_size,
        random_start=random_start, seed=seed,
    )  # fmt: skip
    return online_attack(spec, batch_size=batch_size)


def trades_attack(
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    *,
    seed: int = 0,
    batch_size: int = 1024,
) -> OnlineAttack:
    """Online TRADES inner maximisation (:func:`.trades.trades_pgd`), for
    ``adversarial_fit(..., objective="trades")``.

    The k-th call (k from 0) draws its Gaussian start with a seed that is a function of
    ``seed`` and k, so each batch gets its own start and a rerun repeats exactly. The labels it
    is given are not used: TRADES maximises the KL divergence from the clean prediction.

    Args:
        eps: L∞ budget, ≥ 0 (reference: 0.031 on CIFAR-10, 0.3 on MNIST).
        steps: sign steps, ≥ 1 (reference: 10 on CIFAR-10, 40 on MNIST); a training step
            costs about ``steps + 3`` clean forward passes.
        step_size: absolute step; None means 2.5·ε/steps (ε/4 at 10 steps; the reference
            took 0.007 at ε = 0.031).
        seed: seeds the starts, with the call's number.
        batch_size: inputs per attack pass.

    Returns:
        ``attack(model, x, y) -> x_adv`` for :func:`adversarial_fit`; ``attack.calls`` counts
        its calls.

    Example:
        >>> adversarial_fit(model, ds.train, attack=trades_attack(0.3), objective="trades", ...)
    """
    eps = _as_float(eps)
    step_size = check_trades_pgd(eps, steps, step_size, seed, batch_size)
    return _Trades(eps, steps, step_size, int(seed), batch_size)


def dgn_attack(
    generators: dgn.Generators,
    *,
    epochs: int = 5,
    route: str = "label",
    seed: int = 0,
    on_train: Callable[[int, int, int, float], None] | None = None,
) -> OnlineAttack:
    """Online DGN (beyond seed 004): keep training the generators against the current model.

    Each call (once per epoch, so use ``every="epoch"``) trains the generators for ``epochs``
    more epochs from their current weights, on the (x, y) it is given and against the model as
    it is now, with the loss, weights and schedule they were trained with
    (``generators.spec``); then it generates every input's counterpart. The loss's properties
    (LRP relevance, suspicious units) are recomputed against the current model and Adam's
    moments start afresh. Regenerating with frozen generators would give the static set again.

    Cost per training epoch: ``epochs`` DGN epochs over the training set (ceil(n_max / DGN
    batch) steps of all generators at once, each with a forward and backward pass of the
    target; n_max the largest class's count), the loss's properties, and one generation
    pass; on digits with ``nce`` and the default 5, about a second on two CPU cores, several
    clean epochs' worth.

    Args:
        generators: the starting generators, e.g. ``dgn.load(<attack run>/generators)``;
            ``attack.generators`` holds the latest ones after each call.
        epochs: DGN epochs per call, ≥ 1.
        route: ``label`` (seed 004) or ``prediction`` (the current model's prediction).
        seed: seeds each call's shuffling of the generators' inputs (with the call's number).
        on_train: called as ``on_train(call, label, dgn_epoch, mean_loss)``, call from 1.

    Returns:
        ``attack(model, x, y) -> x_adv`` for :func:`adversarial_fit` with ``every="epoch"``;
        ``attack.calls`` counts its calls.

    Example:
        >>> attack = dgn_attack(dgn.load("generators"), epochs=5)
        >>> adversarial_fit(model, ds.train, attack=attack, every="epoch", ...)
    """
    if not isinstance(generators, dgn.Generators):
        raise ConfigError(
            f"generators must be robust.attacks.dgn.Generators, but got "
            f"{type(generators).__name__}"
        )
    _check_count("epochs", epochs)
    if route not in dgn.ROUTES:
        raise ConfigError(f"route must be one of {', '.join(dgn.ROUTES)}, but got {route=}")
    _check_seed(seed)
    return _DGN(generators, epochs, route, int(seed), on_train)


def _as_float(eps: float) -> float:
    """``eps`` as a float when it is a real number (the spec rejects anything else)."""
    return float(eps) if isinstance(eps, Real) and not isinstance(eps, bool) else eps


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, but got {name}={value!r}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, but got {seed=}")


def _call_seed(seed: int, call: int) -> int:
    """The seed of an attack's ``call``-th use (each batch its own random start)."""
    return (seed * 1_000_003 + call) % 2**63


@dataclass
class _Online:
    spec: AttackSpec
    batch_size: int | None
    calls: int = 0
    epoch_only = False

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        spec = dataclasses.replace(self.spec, seed=_call_seed(int(self.spec.seed), self.calls))
        self.calls += 1
        return spec.craft(model, x, y, batch_size=self.batch_size)


@dataclass
class _Trades:
    eps: float
    steps: int
    step_size: float
    seed: int
    batch_size: int
    calls: int = 0
    epoch_only = False

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        seed = _call_seed(self.seed, self.calls)
        self.calls += 1
        return trades_pgd(
            model, x, self.eps, self.steps, self.step_size, seed=seed, batch_size=self.batch_size
        )


@dataclass
class _DGN:
    generators: dgn.Generators
    epochs: int
    route: str
    seed: int
    on_train: Callable[[int, int, int, float], None] | None
    calls: int = 0
    epoch_only = True

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        self.calls += 1
        call, report = self.calls, self.on_train
        self.generators = dgn.train_further(
            self.generators, model, x, y, epochs=self.epochs, seed=_call_seed(self.seed, call),
            on_epoch=None if report is None else lambda c, e, loss: report(call, c, e, loss),
        )  # fmt: skip
        generate = AttackSpec(
            "dgn", self.generators.eps, generators=self.generators, route=self.route
        )
        return generate.craft(model, x, y)


def static_pairs(train: Split, adversarial: Mapping[str, Tensor]) -> tuple[Split, Tensor]:
    """The clean training inputs an adversarial set was crafted from, paired with it (seed 004).

    Args:
        train: the clean train split the set was crafted on.
        adversarial: ``x`` (M, C, H, W) and ``y`` (M,) adversarial inputs and labels and
            ``index`` (M,) their positions in ``train`` (an attack run's
            ``adversarial/train.safetensors``).

    Returns:
        ``(pairs, x_adv)``: ``pairs`` holds ``train.x[index]`` and ``train.y[index]``, for
        :func:`adversarial_fit`'s ``train`` and ``x_adv``.

    Raises:
        DataError: the labels differ from the split's at their index (crafted on other data).
    """
    from robust.data import Split

    index = adversarial["index"]
    pairs = Split(x=train.x[index], y=train.y[index])
    if not (adversarial["y"] == pairs.y).all():
        raise DataError(
            "the adversarial train labels must match the train split's at their index, but "
            "they differ: it attacked other data"
        )
    return pairs, adversarial["x"]
