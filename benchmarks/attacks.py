"""What our gradient attacks cost against ART's and torchattacks' on seed 004's two models.

Cases: PGD(20) and FGSM, L∞, on seed 004's MNIST 5×30 dense net (ε 0.3, PGD step 0.01) and
its CIFAR CNN (ε 0.0313, PGD step 0.0078), ``--n`` inputs each (default 10,000). Offline there is
no real data, so the inputs are seeded uniform noise in [0, 1] with seeded random labels, and the
models keep their seeded initial (Keras) weights: the work per input does not depend on the data
or on training. No random start anywhere (``random_start=False`` here and in torchattacks,
``num_random_init=0`` in ART), so the three libraries run the same computation.

Candidates, in one process, on the same inputs:

* ours: ``robust.attacks.pgd`` / ``fgsm`` at their automatic batch size (512 for the MNIST net,
  128 for the CIFAR CNN on the CPU; 1024 on CUDA);
* ART 1.20: ``ProjectedGradientDescentPyTorch`` / ``FastGradientMethod`` on a
  ``PyTorchClassifier`` (cross-entropy, clip values (0, 1)), at our batch size and at ART's
  default (32, read from its signature); ART takes and returns NumPy arrays, which is its API;
* torchattacks: ``PGD`` / ``FGSM`` fed our batch size in chunks (it has no batching of its own).

Before timing, a slice of the inputs is attacked by all three and checked to agree: the largest
absolute difference from ours (printed; only float rounding, as ART and torchattacks average the
loss where we sum it) and the robust accuracy, which must be equal. For this check ART and
torchattacks get the model as ours runs it (on the CPU a conv net is attacked through a
channels-last copy, ``robust.attacks._common.fast_copy``): the NCHW kernels sum in another
order, and on this untrained CIFAR CNN with noise inputs that rounding flips the sign of
near-zero gradient coordinates (max difference 0.063 after 20 steps, same robust accuracy).
The timed runs give every library the model as the user built it (NCHW). The labels of this check
are the model's own predictions, so the clean accuracy is 100 % and the robust accuracy means
something; the timed runs use the random labels (the cost does not depend on them).

Method: each candidate is warmed up once on a slice, then timed by a pilot run on that slice;
the candidates are then run round-robin ``--repeats`` times and the median is reported (CUDA is
synchronised around each run). A baseline whose pilot predicts more than ``--budget`` seconds
per repeat (on 2 idle CPU cores the PGD baselines on the CIFAR CNN take about 110-150 s) is
timed on the first m inputs (whole batches of ours, about half the budget) and scaled by n/m,
and its entry says "extrapolated from n=m"; ours always runs on all n inputs. Ratios are
baseline time over ours: 3.4× means the baseline takes 3.4 times as long.

Expected floor: ours at least 1.5× faster than ART at equal batch size, and not slower
than torchattacks (ratio ≥ 1.0), in every case. The summary lines say PASS or FAIL.

Run: ``python benchmarks/attacks.py [--n 10000] [--repeats 3] [--device auto] [--quick]``;
``--quick`` is a smoke run (n=512, one repeat). Run it on an otherwise idle machine: on 2 cores
shared with another busy process, torch's two CPU threads stall each other (PGD on the MNIST
net varies 0.4-6 s run to run, against 0.21-0.34 s with ``--threads 1``), and the stalls hit the
many small batches of ART at batch 32 hardest.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

STEPS = 20
CHECK_N = 256
FLOOR_ART = 1.5  # ART (at our batch size) time / ours
FLOOR_TA = 1.0  # torchattacks time / ours

# model name -> input shape, ε, PGD step (seed 004's settings)
MODELS = {
    "mnist_5x30": ((1, 28, 28), 0.3, 0.01),
    "cifar_keras": ((3, 32, 32), 0.0313, 0.0078),
}


@dataclass
class Candidate:
    name: str
    attack: Callable[[object, object], object]  # (x, y) -> x_adv
    x: object  # inputs and labels in the library's format (tensors, or NumPy for ART)
    y: object
    subsample: bool = False  # may be timed on fewer inputs and extrapolated

    def run(self, m: int) -> object:
        """Attack the first m inputs."""
        return self.attack(self.x[:m], self.y[:m])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[int], object], m: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    run(m)
    _sync(device)
    return time.perf_counter() - t0


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, bs: int = 512) -> Tensor:
    return torch.cat([model(x[i : i + bs]).argmax(1) for i in range(0, len(x), bs)])


def _attacks(model: nn.Module, attack: str, eps: float, step: float, shape, device, bs: int):
    """(ours, ART at batch b, torchattacks) as functions of (x, y) in each library's format."""
    import torchattacks
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    from robust.attacks import fgsm, pgd

    clf = PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss(),
        input_shape=shape,
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )
    if attack == "pgd":

        def ours(x, y):
            return pgd(model, x, y, eps, STEPS, step, random_start=False, batch_size=bs)

        def art(b):
            atk = ProjectedGradientDescentPyTorch(
                clf,
                norm=np.inf,
                eps=eps,
                eps_step=step,
                max_iter=STEPS,
                num_random_init=0,
                batch_size=b,
                verbose=False,
            )
            return atk.generate

        ta = torchattacks.PGD(model, eps=eps, alpha=step, steps=STEPS, random_start=False)
    else:

        def ours(x, y):
            return fgsm(model, x, y, eps, batch_size=bs)

        def art(b):
            return FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=b).generate

        ta = torchattacks.FGSM(model, eps=eps)

    def torchattacks_run(x, y):
        return torch.cat([ta(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)])

    return ours, art, torchattacks_run


def _art_default_batch() -> int:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch

    defaults = {
        inspect.signature(cls.__init__).parameters["batch_size"].default
        for cls in (ProjectedGradientDescentPyTorch, FastGradientMethod)
    }
    assert len(defaults) == 1, f"ART's PGD and FGM default batch sizes differ: {defaults}"
    return defaults.pop()


def _check(name, attack, model, ours, art, ta, x, device) -> None:
    """Attack a slice with the three libraries and assert that they compute the same thing."""
    y = _predict(model, x)  # clean accuracy 100 %, so the robust accuracy is informative
    onehot = np.eye(10, dtype=np.float32)[y.cpu().numpy()]
    adv = {
        "ours": ours(x, y),
        "ART": torch.from_numpy(art(x.cpu().numpy(), onehot)).to(device),
        "torchattacks": ta(x, y),
    }
    acc = {k: (_predict(model, v) == y).float().mean().item() for k, v in adv.items()}
    diff = {k: (v - adv["ours"]).abs().max().item() for k, v in adv.items() if k != "ours"}
    print(
        f"  check {name} {attack} n={len(x)}: max |ours - ART| {diff['ART']:.2g}, "
        f"max |ours - torchattacks| {diff['torchattacks']:.2g}; robust accuracy "
        + ", ".join(f"{k} {100 * v:.1f} %" for k, v in acc.items())
    )
    assert len(set(acc.values())) == 1, f"robust accuracies differ: {acc}"
    # a sign flip of a near-zero gradient coordinate would move it by 2·step; rounding is ~1e-7
    assert max(diff.values()) < 1e-5, f"adversarial examples differ: {diff}"


def _measure(
    cands: list[Candidate], n: int, args, device, bs: int
) -> dict[str, tuple[float, int]]:
    """Median seconds for all n inputs and the number of inputs actually timed, per candidate."""
    pilot = min(n, bs)
    sizes = {}
    for c in cands:
        c.run(pilot)  # warm-up
        estimate = _timed(c.run, pilot, device) * n / pilot
        m = n
        if c.subsample and estimate > args.budget:
            # about half the budget, whole batches of ours, at least the pilot slice
            m = int(n * args.budget / 2 / estimate) // bs * bs
            m = min(n, max(pilot, m))
        sizes[c.name] = m
    times: dict[str, list[float]] = {c.name: [] for c in cands}
    for _ in range(args.repeats):  # round-robin, so a drift in machine speed hits all alike
        for c in cands:
            times[c.name].append(_timed(c.run, sizes[c.name], device) * n / sizes[c.name])
    return {k: (statistics.median(v), sizes[k]) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="inputs per case")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per candidate")
    ap.add_argument("--budget", type=float, default=120.0, help="max s per baseline repeat")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: n=512, one repeat")
    ap.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}"
    )
    args = ap.parse_args()
    chosen = [m for m in args.models.split(",") if m]
    if not chosen or set(chosen) - set(MODELS):
        ap.error(f"--models must name some of {', '.join(MODELS)}, but got {args.models!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n, args.repeats = 512, 1
    logging.basicConfig(level=logging.WARNING)

    from robust import models
    from robust.attacks._common import batch_size_for, fast_copy
    from robust.utils import resolve_device, seed_everything

    device = resolve_device(args.device)
    art_batch = _art_default_batch()
    print(
        f"device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"ours = robust.attacks at its automatic batch size, ART at that size and at its "
        f"default {art_batch}; "
        f"median of {args.repeats}; s for all n inputs"
    )
    verdicts = []
    for name in chosen:
        shape, eps, step = MODELS[name]
        seed_everything(0)
        model = models.build(name, shape, 10).to(device).eval()
        x = torch.rand(args.n, *shape, generator=torch.Generator().manual_seed(1))
        y = torch.randint(0, 10, (args.n,), generator=torch.Generator().manual_seed(2))
        x_np, y_np = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
        x, y = x.to(device), y.to(device)
        bs = batch_size_for(x, device, None)  # what robust.attacks picks by default
        for attack in ("pgd", "fgsm"):
            label = f"{attack}{STEPS}" if attack == "pgd" else attack
            ours, art, ta = _attacks(model, attack, eps, step, shape, device, bs)
            art_ours, art_default = art(bs), art(art_batch)
            # the check gives ART and torchattacks the model as ours runs it (same kernels)
            same = _attacks(fast_copy(model, device)[0], attack, eps, step, shape, device, bs)
            _check(name, label, model, ours, same[1](bs), same[2], x[:CHECK_N], device)
            cands = [
                Candidate("ours", ours, x, y),
                Candidate(f"ART b={bs}", art_ours, x_np, y_np, subsample=True),
                Candidate(f"ART b={art_batch}", art_default, x_np, y_np, subsample=True),
                Candidate("torchattacks", ta, x, y, subsample=True),
            ]
            res = _measure(cands, args.n, args, device, bs)
            t0 = res["ours"][0]
            parts = [f"ours {t0:.3g} s ({args.n / t0:,.0f} img/s)"]
            for i, c in enumerate(cands[1:]):
                t, m = res[c.name]
                note = " slower" if i == 0 else ""
                extra = f", extrapolated from n={m:,}" if m < args.n else ""
                parts.append(f"{c.name} {t:.3g} s ({t / t0:.2f}×{note}{extra})")
            print(f"{name} {label} n={args.n:,}: " + " | ".join(parts), flush=True)
            r_art = res[f"ART b={bs}"][0] / t0
            r_ta = res["torchattacks"][0] / t0
            verdicts.append(
                f"{name} {label}: ART b={bs}/ours {r_art:.2f}× (floor {FLOOR_ART}×) "
                f"{'PASS' if r_art >= FLOOR_ART else 'FAIL'}; torchattacks/ours {r_ta:.2f}× "
                f"(floor {FLOOR_TA}×) {'PASS' if r_ta >= FLOOR_TA else 'FAIL'}"
            )
    print("acceptance:")
    for v in verdicts:
        print(f"  {v}")


if __name__ == "__main__":
    main()
