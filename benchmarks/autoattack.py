"""Our AutoAttack against torchattacks' on the same model and inputs (time and robust accuracy).

Cases: the digits CNN trained as the tests train it (8 epochs, seed 0) on its first ``--n``
test inputs, and seed 004's CIFAR CNN with its seeded initial weights on ``--n`` seeded uniform
inputs with labels its own predictions (offline there is no CIFAR data; the work per input does
not depend on the data, and with labels = predictions the clean accuracy is 100 %). The
``standard`` version of both (APGD-CE, APGD-T, FAB-T, Square with 5000 queries; torchattacks'
AutoAttack gives APGD, APGD-T and FAB its classes' default of 10 iterations where the reference
uses 100, so ours is timed at 10 against it, and also at its own 100), L∞ ε 0.08 and L2 ε 0.6
on digits, L∞ 8/255 on CIFAR, seed 0, both at the batch size of ours (torchattacks takes the
whole input at once: both get it in chunks of that size). Each library runs ``--repeats``
times alternately after one warm-up on a slice; medians are printed with every run, and the
ratio is torchattacks' time over ours (2.0× = ours twice as fast).

Expected: ours not slower (ratio ≥ 1.0), and the same or a lower robust accuracy.

Run: ``python benchmarks/autoattack.py [--n 200] [--repeats 2] [--cifar-n 64]``; on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchattacks
from torch import Tensor, nn

from robust import data, models
from robust.attacks import autoattack
from robust.training import fit


def _ours(model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, batch: int) -> Tensor:
    """At torchattacks' settings: its AutoAttack runs APGD, APGD-T and FAB with its classes'
    default of 10 iterations (the reference AutoAttack uses 100)."""
    return autoattack(model, x, y, eps, norm, steps=10, batch_size=batch).x_adv


def _ours_reference(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, batch: int
) -> Tensor:
    """Ours at the reference AutoAttack's 100 iterations (our default)."""
    return autoattack(model, x, y, eps, norm, batch_size=batch).x_adv


def _theirs(model: nn.Module, x: Tensor, y: Tensor, eps: float, norm: str, batch: int) -> Tensor:
    their_norm = {"inf": "Linf", "2": "L2"}[norm]
    atk = torchattacks.AutoAttack(model, norm=their_norm, eps=eps, n_classes=10, seed=0)
    return torch.cat([atk(x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch)])


def _case(
    name: str, model: nn.Module, x: Tensor, y: Tensor, eps: float, repeats: int, norm: str = "inf"
) -> None:
    batch = 256
    fns: dict[str, Callable] = {
        "ours": _ours,
        "torchattacks": _theirs,
        "ours-100": _ours_reference,
    }
    runs: dict[str, list[float]] = {who: [] for who in fns}
    accuracy: dict[str, float] = {}
    for fn in fns.values():  # warm-up
        fn(model, x[:8], y[:8], eps, norm, batch)
    for i in range(repeats):
        for who in list(fns) if i % 2 == 0 else list(fns)[::-1]:
            t0 = time.perf_counter()
            adv = fns[who](model, x, y, eps, norm, batch)
            runs[who].append(time.perf_counter() - t0)
            with torch.no_grad():
                accuracy[who] = (model(adv).argmax(1) == y).float().mean().item()
    ours, theirs = statistics.median(runs["ours"]), statistics.median(runs["torchattacks"])
    print(
        f"{name}: ours {ours:.1f} s, robust {accuracy['ours']:.1%}; torchattacks {theirs:.1f} s, "
        f"robust {accuracy['torchattacks']:.1%}; {theirs / ours:.2f}× "
        f"[ours {', '.join(f'{t:.1f}' for t in runs['ours'])}; torchattacks "
        f"{', '.join(f'{t:.1f}' for t in runs['torchattacks'])}]; ours at 100 iterations "
        f"{statistics.median(runs['ours-100']):.1f} s, robust {accuracy['ours-100']:.1%}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="digits test inputs")
    ap.add_argument("--cifar-n", type=int, default=64, help="CIFAR-shaped inputs (0: skip)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    ds = data.load("digits", seed=0)
    model = models.for_dataset(ds, seed=0)
    fit(model, ds.train, ds.val, epochs=8, lr=1e-3, batch_size=32, optimizer="adam", seed=0,
        device="cpu", progress=False)  # fmt: skip
    model.eval()
    x, y = ds.test.x[: args.n], ds.test.y[: args.n]
    _case("digits CNN, L∞ ε 0.08", model, x, y, 0.08, args.repeats)
    _case("digits CNN, L2 ε 0.6", model, x, y, 0.6, args.repeats, "2")
    if args.cifar_n:
        cifar = models.build("cifar_cnn", (3, 32, 32), 10, seed=0).eval()
        g = torch.Generator().manual_seed(0)
        x = torch.rand(args.cifar_n, 3, 32, 32, generator=g)
        with torch.no_grad():
            y = cifar(x).argmax(1)
        _case("CIFAR CNN (initial weights), ε 8/255", cifar, x, y, 8 / 255, args.repeats)


if __name__ == "__main__":
    main()
