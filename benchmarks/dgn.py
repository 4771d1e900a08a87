"""What DGN generation costs against PGD(20): ours batched, and ART's at batch size 1.

Setups: seed 004's MNIST (target ``mnist_5x30``, DGN ``mnist``, ε 0.3, PGD step 0.01) and CIFAR
(``cifar_keras``, DGN ``cifar``, ε 8/255, step 2/255), and seed 000's GTSRB CNN at 3×48×48 with
43 classes (``gtsrb_cnn``, DGN ``fitting``, ε 8/255, step 2/255). Offline there is no real data:
inputs are seeded uniform noise in [0, 1] with seeded random labels, and the target models keep
their seeded initial (untrained) weights. The work per input depends on neither.

Per setup, ``--n`` inputs (default 10,000), all on the device before timing:

* DGN generate: ``Generators.generate(x, y)`` (route by label, batch 1024) with generators
  trained for real by ``dgn.train(loss="nce")`` on synthetic inputs;
* bare forward: the same generators over the same inputs already sorted into contiguous class
  slices, under ``no_grad``, batch 1024, without ε-clipping, gather or scatter. Acceptance:
  generate / bare ≤ 1.25, i.e. routing, clipping and data movement add little;
* our PGD(20): ``robust.attacks.pgd`` at its automatic batch size;
* ART PGD(20) at batch size 1 (seed 004's setting): ``ProjectedGradientDescent`` on a
  ``PyTorchClassifier`` (cross-entropy, clip values (0, 1)), timed on ``--art-n`` inputs
  (default 100) and scaled to n, labelled "extrapolated from n=...".

Both PGDs start from x (``random_start=False``, ``num_random_init=0``), so they do the same
computation. Our PGD runs on all n inputs unless a pilot batch predicts more than ``--budget``
seconds per repeat (on the CPU the GTSRB CNN does); then it is timed on whole batches filling
about half the budget and scaled to n, labelled likewise.

Reading the ratios: "PGD / DGN" is PGD's time over DGN generation's, so 8× means DGN generates
8 times faster. Beside it stands the FLOP ratio: 20 forward + input-gradient passes of the
target over one forward pass of a generator, per input, counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products only; ART's
backward also computes the weight gradients, which PGD does not need and the count leaves out).
A time ratio near the FLOP ratio is algorithmic; ART's excess over it at batch 1 is per-call
overhead. The MNIST target is a tiny dense net, so its FLOP ratio is below 1: the generator
does more arithmetic than 20 gradient steps of the target, and only overhead makes it win.

Training: ``dgn.train`` runs 1 + ``--repeats`` epochs of one step each (one batch per class,
at the schedule's batch size: 100; ``--quick``: at most 250 inputs per step, scaled per input
to the full batch). The median of the epochs after the first is the step time; the time before
the first epoch's end, less one step, is the one-off setup. Total training is setup + the
schedule's epochs (``dgn.schedule_for``, loss nce: seed 004's 100 for MNIST and CIFAR; our
default 50 for GTSRB, which has no seed schedule) × the steps of one epoch over the real
training set (its largest class / batch, as the grouped training feeds every class a full batch
per step): an extrapolation, labelled so. The total line adds generation and gives the number
of inputs beyond which training + generation beats PGD.

Method: warm-up first; generate and bare forward alternate ``--repeats`` times (at least 3),
and the medians are compared; PGD and ART take the median of ``--repeats``; CUDA is
synchronised around each timed run. On the CPU, generate's own work (input check, sort, gather,
clip, scatter) measured 1–2 % of the generators' time at n=1,000.

Expected: generate / bare ≤ 1.25 in every setup (the summary says PASS or FAIL). Seed 004
reports DGN generation 7–11× faster than PGD(20) at batch size 1; ART at batch 1 should be
there or beyond on CIFAR and GTSRB, while our batched PGD closes much of that gap (on MNIST, all
of it: there PGD is faster).

Run: ``python benchmarks/dgn.py [--setups mnist,cifar,gtsrb] [--n 10000] [--repeats 3]
[--device auto] [--threads 0] [--quick]``; ``--quick`` is a smoke run (n=1,000, one repeat
except the generate/bare pairs, ART on 10 inputs, our PGD budget 5 s, small training steps),
about a minute on 2 CPU cores with ``--threads 1``. On 2 cores shared with another busy
process use ``--threads 1``: torch's two threads stall each other there, and a single run varied
up to 4× (generate / bare read 0.8–4.3 with one pair; 1.04–1.07 with one thread).
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import statistics
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from robust.attacks.dgn import Generators

STEPS = 20
GEN_BATCH = 1024  # Generators.generate's default batch size
WARMUP_N = 512  # inputs of the generation warm-up
FLOOR_BARE = 1.25  # ceiling of generate time / bare forward time
MIN_PAIRS = 3  # generate and bare forward alternate at least this often, even with --quick
QUICK_STEP_INPUTS = 250  # --quick: training inputs per step, all classes together
SEED_SPEEDUP = "7–11×"  # seed 004: DGN generation vs PGD(20) at batch size 1


@dataclass(frozen=True)
class Setup:
    """A target model, its DGN architecture and attack budget, and its real training set."""

    target: str
    shape: tuple[int, int, int]
    num_classes: int
    architecture: str
    eps: float
    step_size: float
    dataset: str  # the name dgn.schedule_for knows
    n_train: int  # real training-set size
    n_largest: int  # real training inputs of the largest class (sets the steps per epoch)


SETUPS = {
    "mnist": Setup("mnist_5x30", (1, 28, 28), 10, "mnist", 0.3, 0.01, "mnist", 60_000, 6_742),
    "cifar": Setup(
        "cifar_keras", (3, 32, 32), 10, "cifar", 8 / 255, 2 / 255, "cifar10", 50_000, 5_000
    ),
    "gtsrb": Setup(
        "gtsrb_cnn", (3, 48, 48), 43, "fitting", 8 / 255, 2 / 255, "gtsrb", 39_209, 2_250
    ),
}
SEED_SCHEDULES = ("mnist", "cifar10")  # datasets whose nce schedule is seed 004's


@dataclass(frozen=True)
class Timing:
    """Median seconds for all n inputs, and how many inputs were actually timed."""

    seconds: float
    timed: int
    n: int

    def label(self) -> str:
        extra = f", extrapolated from n={self.timed:,}" if self.timed < self.n else ""
        return f"{_secs(self.seconds)}{extra}"


@dataclass(frozen=True)
class Training:
    """A measured DGN training step and its extrapolation to the full schedule."""

    step_s: float  # median of the timed one-step epochs
    setup_s: float  # one-off work before the first epoch
    batch: int  # inputs per class in the measured step
    epochs: int  # the schedule's epochs
    full_steps: int  # steps of one epoch over the real training set
    full_batch: int  # the schedule's batch size

    @property
    def full_epoch_s(self) -> float:
        return self.step_s * self.full_steps * self.full_batch / self.batch

    @property
    def total_s(self) -> float:
        return self.setup_s + self.epochs * self.full_epoch_s


def _secs(t: float) -> str:
    """Seconds for a table: 3 significant digits, with hours beyond one."""
    text = f"{t:.3g} s" if t < 1000 else f"{t:,.0f} s"
    return text + (f" ({t / 3600:.1f} h)" if t >= 3600 else "")


def _ratio(num: float, den: float) -> str:
    return f"{num / den:.3g}×"


def _rate(n: int, t: float) -> str:
    """Inputs per second."""
    return f"{n / t:,.0f}" if n / t >= 100 else f"{n / t:.3g}"


def _flop_text(f: float) -> str:
    return f"{f / 1e6:.3g} M" if f < 1e9 else f"{f / 1e9:.3g} G"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - t0


def _data(setup: Setup, n: int, seed: int, *, balanced: bool = False) -> tuple[Tensor, Tensor]:
    """n seeded inputs uniform in [0, 1] and labels (random, or balanced and shuffled)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *setup.shape, generator=gen)
    if balanced:
        y = (torch.arange(n) % setup.num_classes)[torch.randperm(n, generator=gen)]
    else:
        y = torch.randint(0, setup.num_classes, (n,), generator=gen)
    return x, y


def _flops(run: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def _flops_per_input(model: nn.Module, generator: nn.Module, setup: Setup) -> tuple[int, int]:
    """(target forward + input gradient, generator forward) per input, on CPU copies."""
    batch = 4
    target = copy.deepcopy(model).cpu().eval().requires_grad_(False)  # input gradient only
    net = copy.deepcopy(generator).cpu().eval()
    x = torch.rand(batch, *setup.shape, requires_grad=True)
    y = torch.zeros(batch, dtype=torch.int64)

    def gradient() -> None:
        F.cross_entropy(target(x), y, reduction="sum").backward()

    with torch.no_grad():
        gen = _flops(lambda: net(x))
    return _flops(gradient) // batch, gen // batch


def _train(model: nn.Module, setup: Setup, args: Namespace) -> tuple[Generators, Training]:
    """Train real generators for 1 + repeats one-step epochs; time the steps and the setup."""
    from robust.attacks import dgn

    schedule = dgn.schedule_for(setup.dataset, "nce")
    batch = schedule.batch_size
    if args.quick:
        batch = max(1, min(batch, QUICK_STEP_INPUTS // setup.num_classes))
    x, y = _data(setup, batch * setup.num_classes, seed=3, balanced=True)  # one batch per class
    marks: dict[int, float] = {}

    def on_epoch(_label: int, epoch: int, _loss: float) -> None:
        marks.setdefault(epoch, time.perf_counter())  # every class reports; keep the first

    epochs = 1 + args.repeats
    t0 = time.perf_counter()
    gens = dgn.train(
        model, x, y, "nce", eps=setup.eps, epochs=epochs, lr=schedule.lr, batch_size=batch,
        architecture=setup.architecture, seed=0, on_epoch=on_epoch, progress=False,
    )  # fmt: skip
    step_s = statistics.median(marks[e] - marks[e - 1] for e in range(2, epochs + 1))
    training = Training(
        step_s=step_s,
        setup_s=max(0.0, marks[1] - t0 - step_s),
        batch=batch,
        epochs=schedule.epochs,
        full_steps=math.ceil(setup.n_largest / schedule.batch_size),
        full_batch=schedule.batch_size,
    )
    return gens, training


def _bare_forward(gens: Generators, x: Tensor, y: Tensor) -> Callable[[], None]:
    """The generators over x pre-sorted into contiguous class slices: no clip, gather, scatter."""
    order = torch.argsort(y, stable=True)
    x_sorted = x[order].contiguous()
    slices, start = [], 0
    for c, count in enumerate(torch.bincount(y).tolist()):
        if count:
            slices.append((gens.nets[str(c)], x_sorted[start : start + count]))
        start += count

    @torch.no_grad()
    def run() -> None:
        for net, xs in slices:
            for i in range(0, len(xs), GEN_BATCH):
                net(xs[i : i + GEN_BATCH])

    return run


def _generate_vs_bare(
    gens: Generators, x: Tensor, y: Tensor, repeats: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds of ``gens.generate(x, y)`` and of the bare forward, alternated."""
    bare = _bare_forward(gens, x, y)
    gens.generate(x[:WARMUP_N], y[:WARMUP_N], batch_size=GEN_BATCH)  # warm-up
    _bare_forward(gens, x[:WARMUP_N], y[:WARMUP_N])()
    times: dict[str, list[float]] = {"generate": [], "bare": []}
    for _ in range(repeats):
        times["generate"].append(_timed(lambda: gens.generate(x, y, batch_size=GEN_BATCH), device))
        times["bare"].append(_timed(bare, device))
    return statistics.median(times["generate"]), statistics.median(times["bare"])


def _our_pgd(
    model: nn.Module, setup: Setup, x: Tensor, y: Tensor, args: Namespace, device: torch.device
) -> tuple[Timing, int]:
    """Median time of our PGD(20) for all n inputs (subsampled beyond the budget); batch size."""
    from robust.attacks import pgd
    from robust.attacks._common import batch_size_for

    n = len(x)
    bs = batch_size_for(x, device, None)  # what pgd picks by default

    def run(m: int) -> None:
        pgd(model, x[:m], y[:m], setup.eps, STEPS, setup.step_size, random_start=False)

    run(min(n, 8))  # warm-up
    pilot = min(n, bs)
    times = [_timed(lambda: run(pilot), device) * n / pilot]
    m = n
    if times[0] > args.budget:  # about half the budget, whole batches, at least the pilot
        m = min(n, max(pilot, int(n * args.budget / 2 / times[0]) // bs * bs))
    if m != pilot:  # the pilot counts as a repeat only if it timed the same inputs
        times = []
    while len(times) < args.repeats:
        times.append(_timed(lambda: run(m), device) * n / m)
    return Timing(statistics.median(times), m, n), bs


def _art_pgd(
    model: nn.Module, setup: Setup, x: Tensor, y: Tensor, args: Namespace, device: torch.device
) -> Timing:
    """Median time of ART's PGD(20) at batch size 1 on ``--art-n`` inputs, scaled to n."""
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss(),
        input_shape=setup.shape,
        nb_classes=setup.num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )
    attack = ProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=setup.eps,
        eps_step=setup.step_size,
        max_iter=STEPS,
        batch_size=1,
        num_random_init=0,
        verbose=False,
    )
    m = min(len(x), args.art_n)
    x_np = x[:m].cpu().numpy()  # ART takes and returns NumPy arrays, which is its API
    y_np = np.eye(setup.num_classes, dtype=np.float32)[y[:m].cpu().numpy()]
    attack.generate(x_np[:1], y_np[:1])  # warm-up
    times = [
        _timed(lambda: attack.generate(x_np, y_np), device) * len(x) / m
        for _ in range(args.repeats)
    ]
    return Timing(statistics.median(times), m, len(x))


def _break_even(training_s: float, t_gen: float, t_pgd: float, n: int) -> str:
    """Inputs beyond which DGN training + generation takes less time than PGD."""
    saved = (t_pgd - t_gen) / n  # per input
    if saved <= 0:
        return "never (PGD is faster per input)"
    return f"beyond {training_s / saved:,.0f} inputs"


def _run_setup(name: str, setup: Setup, args: Namespace, device: torch.device) -> list[str]:
    """Measure one setup and print its table; return its summary and acceptance lines."""
    from robust import models
    from robust.utils import seed_everything

    seed_everything(0)
    model = models.build(setup.target, setup.shape, setup.num_classes).to(device).eval()
    x, y = _data(setup, args.n, seed=1)
    x, y = x.to(device), y.to(device)
    print(
        f"\n{name}: target {setup.target} (untrained) {setup.shape}, {setup.num_classes} "
        f"classes; DGN {setup.architecture}; ε {setup.eps:.4g}, PGD step {setup.step_size:.4g}; "
        f"n={args.n:,}",
        flush=True,
    )

    gens, training = _train(model, setup, args)
    f_grad, f_gen = _flops_per_input(model, gens.nets[str(gens.classes[0])], setup)
    f_pgd = STEPS * f_grad
    t_gen, t_bare = _generate_vs_bare(gens, x, y, max(args.repeats, MIN_PAIRS), device)
    ours, bs = _our_pgd(model, setup, x, y, args, device)
    art = _art_pgd(model, setup, x, y, args, device)

    flops = _ratio(f_pgd, f_gen)
    head = ("case", "time for n", "img/s", "PGD / DGN time", "PGD / DGN FLOPs")
    rows = [
        ("DGN generate (route by label)", _secs(t_gen), _rate(args.n, t_gen), "", ""),
        (
            f"bare generator forward, batch {GEN_BATCH}",
            _secs(t_bare),
            _rate(args.n, t_bare),
            f"(generate / bare {t_gen / t_bare:.2f})",
            "",
        ),
        (
            f"our PGD({STEPS}), batch {bs}",
            ours.label(),
            _rate(args.n, ours.seconds),
            _ratio(ours.seconds, t_gen),
            flops,
        ),
        (
            f"ART PGD({STEPS}), batch 1",
            art.label(),
            _rate(args.n, art.seconds),
            _ratio(art.seconds, t_gen),
            flops,
        ),
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(
        f"  FLOPs per input: generator forward {_flop_text(f_gen)}; target forward + input "
        f"gradient {_flop_text(f_grad)}, × {STEPS} = {_flop_text(f_pgd)}"
    )
    source = "seed 004's" if setup.dataset in SEED_SCHEDULES else "our default"
    scaled = ""
    if training.batch != training.full_batch:
        per_full = training.step_s * training.full_batch / training.batch
        scaled = f" (scaled per input to batch {training.full_batch}: {_secs(per_full)})"
    print(
        f"  DGN training: one step ({setup.num_classes} classes × {training.batch} inputs) "
        f"measured {_secs(training.step_s)}{scaled}, setup {_secs(training.setup_s)}; "
        f"extrapolated: {training.epochs} epochs ({source} nce schedule) × "
        f"{training.full_steps} steps (largest class {setup.n_largest:,} of {setup.n_train:,} "
        f"training inputs / batch {training.full_batch}) = {_secs(training.total_s)}"
    )
    total = training.total_s + t_gen
    print(
        f"  total, DGN training (one step measured × {training.full_steps} steps × "
        f"{training.epochs} epochs, extrapolated) + generation: {_secs(total)}; it beats our "
        f"PGD {_break_even(training.total_s, t_gen, ours.seconds, args.n)}, ART's at batch 1 "
        f"{_break_even(training.total_s, t_gen, art.seconds, args.n)}",
        flush=True,
    )
    verdict = "PASS" if t_gen / t_bare <= FLOOR_BARE else "FAIL"
    return [
        f"{name} n={args.n:,}: DGN {_secs(t_gen)}; PGD / DGN time: ours "
        f"{_ratio(ours.seconds, t_gen)}, ART batch 1 {_ratio(art.seconds, t_gen)} "
        f"(FLOPs {flops}); with training {_secs(total)}",
        f"{name}: generate / bare forward {t_gen / t_bare:.2f} (ceiling {FLOOR_BARE}) {verdict}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setups", default=",".join(SETUPS), help="comma-separated setups")
    ap.add_argument("--n", type=int, default=10_000, help="inputs to generate per setup")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case")
    ap.add_argument("--art-n", type=int, default=100, help="inputs ART (batch 1) is timed on")
    ap.add_argument("--budget", type=float, default=120.0, help="max s per our-PGD repeat")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: n=1000, one repeat, ART on 10, budget 5 s, small training steps",
    )
    args = ap.parse_args()
    for flag, value in (("--n", args.n), ("--repeats", args.repeats), ("--art-n", args.art_n)):
        if value < 1:
            ap.error(f"{flag} must be at least 1, but got {value}")
    if args.budget <= 0:
        ap.error(f"--budget must be greater than 0, but got {args.budget}")
    names = [s.strip() for s in args.setups.split(",") if s.strip()]
    if not names or any(s not in SETUPS for s in names):
        ap.error(f"--setups must name some of {', '.join(SETUPS)}, but got {args.setups!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n, args.repeats, args.art_n, args.budget = 1000, 1, 10, 5.0
    logging.basicConfig(level=logging.WARNING)

    from robust.utils import resolve_device

    device = resolve_device(args.device)
    print(
        f"device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"median of {args.repeats} (generate vs bare: of {max(args.repeats, MIN_PAIRS)}); inputs "
        f"are seeded noise and the targets untrained (timing depends on neither); both PGDs "
        f"start from x (no random start)"
    )
    lines = [_run_setup(name, SETUPS[name], args, device) for name in names]
    print(f"\nsummary (seed 004: DGN generation {SEED_SPEEDUP} faster than PGD(20) at batch 1):")
    for summary, _ in lines:
        print(f"  {summary}")
    print("acceptance:")
    for _, verdict in lines:
        print(f"  {verdict}")


if __name__ == "__main__":
    main()
