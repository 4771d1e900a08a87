"""An independent oracle for every norm of PGD and BIM (robust/attacks/pgd.py, _norms.py).

test_pgd.py checks L∞ PGD and FGSM against ART. Here: L2 against ART, L1 against foolbox's
``L1BasicIterativeAttack`` (seed 000's "BIM") and against a written-out reference loop, the
random starts against that loop and against the distribution they claim, the projection and the
default step size on their own.
"""

from __future__ import annotations

import foolbox as fb
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from art.attacks.evasion import ProjectedGradientDescentPyTorch
from art.estimators.classification import PyTorchClassifier
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from robust.attacks import NORMS, _common, bim, lp, pgd
from robust.attacks._norms import project, random_delta

ALPHA = 1e-3  # significance of the distribution checks (their seeds are fixed: no flakes)
_LOOP_ATOL = 1e-4
"""Per-image gradients round unlike batched ones and the L2/L1 normalisation carries that
through the steps (seen: up to 2e-5); the planted bugs move some pixel by 0.015 to 0.5."""


def _assert_same_images(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Image by image, within 1e-5 for at least 95% of the images. L2 and L1 steps normalise
    the gradient, so they pass on float rounding that sign steps drop, and the oneDNN kernels
    do not round alike from one process to the next: now and then one image drifts (seen: 3e-4
    on 1 of 64). Each planted bug moves every image (its largest gap ≥ 5e-3)."""
    gap = (ours - theirs).flatten(1).abs().amax(1)
    off = gap > 1e-5
    assert off.float().mean() <= 0.05, (
        f"{int(off.sum())} of {len(gap)} images differ by more than 1e-5 (max {gap.max():.3g})"
    )


def _as_attacked(model: nn.Module) -> nn.Module:
    """The channels-last copy our attacks differentiate on the CPU (``_common.fast_copy``), so
    an oracle sums the convolutions in the same order."""
    return _common.fast_copy(model, torch.device("cpu"))[0]


def _size(t: torch.Tensor, norm: str) -> float:
    """‖t‖₂ or ‖t‖₁ of one image."""
    return float(t.norm(p=float(norm)))


def _reference(model, x, y, eps, steps, step_size, norm, start=None):
    """PGD written out image by image, foolbox's way: a step of ``step_size`` along
    sign(g), g/‖g‖₂ or g/‖g‖₁; δ = x_adv − x rescaled onto the ε-sphere when outside (clamped
    for L∞); clip to [0, 1]. ``start``: the random δ the run begins from (clipped)."""
    out = []
    for i in range(len(x)):
        x0, label = x[i : i + 1], y[i : i + 1]
        x_adv = x0.clone() if start is None else (x0 + start[i : i + 1]).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(x_adv), label), x_adv)
            step = g.sign() if norm == "inf" else g / max(_size(g, norm), 1e-12)
            delta = x_adv.detach() + step_size * step - x0
            if norm == "inf":
                delta = delta.clamp(-eps, eps)
            elif _size(delta, norm) > eps:
                delta = delta * (eps / _size(delta, norm))
            x_adv = (x0 + delta).clamp(0, 1)
        out.append(x_adv.detach())
    return torch.cat(out)


# --- L2: ART --------------------------------------------------------------------------------


@pytest.mark.parametrize("step_size", [0.03, None], ids=["step0.03", "default-step"])
@pytest.mark.parametrize("attack", ["pgd", "bim"])
def test_l2_pgd_equals_art(trained, digits, attack, step_size):
    """L2 steps (g/‖g‖₂) and the L2 projection equal ART's ProjectedGradientDescent, image by
    image; with step_size None ART gets 2.5·ε/steps.

    ART clips x + step to [0, 1] *before* projecting (and not after); we (like foolbox and
    Madry et al.) project, then clip. The two agree whenever no step leaves [0, 1], so the
    digits are squeezed into [0.25, 0.75] and ε + step ≤ 0.25: no coordinate can then move by
    more than 0.25. On raw digits (58% of pixels at 0 or 1) every image differs by up to 0.19.
    """
    x = 0.25 + 0.5 * digits.test.x[:64]
    y = digits.test.y[:64]
    eps, steps = 0.2, 10
    if attack == "pgd":
        ours = pgd(trained, x, y, eps, steps, step_size, "2", random_start=False, keep="last")
    else:
        ours = bim(trained, x, y, eps, steps, step_size, "2")
    classifier = PyTorchClassifier(
        _as_attacked(trained),
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art = ProjectedGradientDescentPyTorch(
        classifier,
        norm=2,
        eps=eps,
        eps_step=2.5 * eps / steps if step_size is None else step_size,
        max_iter=steps,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    )
    theirs = torch.from_numpy(art.generate(x.numpy(), y.numpy()))
    _assert_same_images(ours, theirs)
    # the comparison exercised the projection: most images end on the ε-sphere
    assert (lp(ours - x, "2") > eps - 1e-5).float().mean() > 0.5


# --- L1: foolbox and the reference loop -----------------------------------------------------


@pytest.mark.parametrize("eps", [1.0, 3.0])
def test_l1_bim_equals_foolbox(trained, digits, eps):
    """L1 BIM is foolbox's L1BasicIterativeAttack (what seed 000 calls "BIM"), with its default
    step 0.2·ε, on raw digits (foolbox clips after projecting, as we do)."""
    x, y = digits.test.x[:100], digits.test.y[:100]
    ours = bim(trained, x, y, eps, 10, 0.2 * eps, "1")
    model = fb.PyTorchModel(_as_attacked(trained), bounds=(0, 1))
    theirs = fb.attacks.L1BasicIterativeAttack(steps=10).run(model, x, y, epsilon=eps)
    _assert_same_images(ours, theirs)
    assert not torch.equal(ours, x)


@pytest.mark.parametrize("norm", ["2", "1"])
def test_bim_equals_the_reference_loop(trained, digits, norm):
    """L2 and L1 BIM on raw digits (clipping active) equal the per-image loop, which needs no
    foolbox: the L1 step is g/‖g‖₁ and δ is only rescaled when outside the ball."""
    x, y = digits.test.x[:16], digits.test.y[:16]
    eps = {"2": 1.0, "1": 3.0}[norm]
    ours = bim(trained, x, y, eps, 5, 0.4 * eps, norm)
    theirs = _reference(_as_attacked(trained), x, y, eps, 5, 0.4 * eps, norm)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=_LOOP_ATOL)


# --- random starts: the run and the draw ----------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
def test_random_start_pgd_equals_the_reference_loop(trained, digits, norm):
    """PGD from a random start begins at x + random_delta(seed) and projects around x, not
    around the start: the reference loop from the same draw gives the same images, all within
    ε of x."""
    x, y = digits.test.x[:16], digits.test.y[:16]
    eps = {"inf": 0.1, "2": 1.0, "1": 3.0}[norm]
    ours = pgd(trained, x, y, eps, 5, None, norm, random_start=True, seed=3, keep="last")
    start = random_delta(x.shape, eps, norm, torch.Generator().manual_seed(3))
    theirs = _reference(_as_attacked(trained), x, y, eps, 5, 2.5 * eps / 5, norm, start)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=_LOOP_ATOL)
    assert torch.all(lp(ours - x, norm) <= eps + 1e-6)


def _draw(norm: str, n: int, eps: float, seed: int = 0) -> torch.Tensor:
    """n random starts of the digits' shape (d = 64), drawn with a fixed seed."""
    return random_delta(torch.Size((n, 1, 8, 8)), eps, norm, torch.Generator().manual_seed(seed))


def test_linf_random_start_is_uniform_in_the_box():
    """Every coordinate of the L∞ start is uniform on [−ε, ε] (KS test, pooled coordinates)."""
    eps = 0.3
    delta = _draw("inf", 500, eps).flatten(1).double()
    assert delta.abs().max() <= eps
    assert stats.kstest(delta.numpy().ravel(), "uniform", args=(-eps, 2 * eps)).pvalue > ALPHA
    # the coordinates are independent: the first two do not correlate
    assert abs(stats.pearsonr(delta[:, 0], delta[:, 1]).statistic) < 0.15


@pytest.mark.parametrize("norm", ["2", "1"])
def test_l2_and_l1_random_starts_are_uniform_in_the_ball(norm):
    """Uniform in the d-ball means (‖δ‖/ε)^d ~ U(0, 1) (volume grows as r^d) and a uniform
    direction: in L2 u₁² ~ Beta(½, (d−1)/2) for u = δ/‖δ‖₂, in L1 |δ₁|/‖δ‖₁ ~ Beta(1, d−1)
    (uniform on the simplex) with a fair sign. A draw on the sphere, or with radius U(0, ε),
    fails the first check."""
    eps, d, n = 2.0, 64, 2000
    delta = _draw(norm, n, eps).flatten(1).double()
    size = delta.norm(p=float(norm), dim=1)
    assert size.max() <= eps * (1 + 1e-6)
    assert stats.kstest((size / eps).numpy() ** d, "uniform").pvalue > ALPHA
    share = (delta[:, 0] / size).numpy()
    if norm == "2":
        beta = stats.kstest(share**2, "beta", args=(0.5, (d - 1) / 2))
    else:
        beta = stats.kstest(np.abs(share), "beta", args=(1, d - 1))
    assert beta.pvalue > ALPHA
    assert stats.binomtest(int((share > 0).sum()), n).pvalue > ALPHA


# --- projection and default step ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    norm=st.sampled_from(NORMS),
    n=st.integers(1, 4),
    d=st.integers(1, 70),
    eps=st.floats(1e-3, 10.0),
    fraction=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**16),
)
def test_project_leaves_points_inside_the_ball_unchanged(norm, n, d, eps, fraction, seed):
    """A δ strictly inside the ε-ball comes back bit-identical (projection must only shrink what
    lies outside); scaled outside it, δ lands on the sphere."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(n, 1, 1, d, generator=g) + 1e-3
    unit_size = lp(direction, norm).view(n, 1, 1, 1)
    inside = direction / unit_size * eps * fraction
    assert torch.equal(project(inside, eps, norm), inside)
    outside = direction / unit_size * eps * 1.5
    size = lp(project(outside, eps, norm), norm)
    torch.testing.assert_close(size, torch.full_like(size, eps), rtol=1e-5, atol=0)


@pytest.mark.parametrize("norm", NORMS)
def test_default_step_size_is_2_5_eps_over_steps(trained, digits, norm):
    """step_size None is exactly 2.5·ε/steps (Madry et al.), for pgd and bim, and not ε/steps."""
    x, y = digits.test.x[:32], digits.test.y[:32]
    eps, steps = {"inf": 0.1, "2": 1.0, "1": 3.0}[norm], 4
    for attack in (
        lambda s: pgd(trained, x, y, eps, steps, s, norm, random_start=True, seed=1, keep="last"),
        lambda s: bim(trained, x, y, eps, steps, s, norm),
    ):
        default = attack(None)
        assert torch.equal(default, attack(2.5 * eps / steps))
        assert not torch.allclose(default, attack(eps / steps), rtol=0, atol=1e-3)


@pytest.mark.parametrize(("norm", "restarts"), [("inf", 2), ("inf", 3), ("2", 3)])
def test_restarts_keep_per_image_the_strongest_run(trained, digits, norm, restarts):
    """With restarts, each image keeps, of its runs (the reference loop from each successive
    draw of the seeded generator), the one that fools the model, the highest loss among those
    that do, else the highest loss; ties go to the earlier run. Some images must be fooled by
    some runs and not others, so the choice matters."""
    x, y = digits.test.x[:64], digits.test.y[:64]
    eps = {"inf": 0.08, "2": 0.5}[norm]
    model = _as_attacked(trained)
    g = torch.Generator().manual_seed(11)
    starts = [random_delta(x.shape, eps, norm, g) for _ in range(restarts)]
    runs = torch.stack([_reference(model, x, y, eps, 2, eps / 2, norm, s) for s in starts])
    with torch.no_grad():
        logits = torch.stack([model(r) for r in runs])  # (run, image, class)
    fooled = logits.argmax(2) != y
    loss = torch.stack([F.cross_entropy(z, y, reduction="none") for z in logits])
    key = fooled.double() * 1e6 + loss.double()  # fooling first, then the loss
    pick = key.argmax(0)  # the first of equal maxima
    want = runs[pick, torch.arange(len(x))]
    assert fooled.any(0).sum() > 0 and (fooled.any(0) & ~fooled.all(0)).any()  # it matters
    ours = pgd(
        trained, x, y, eps, 2, eps / 2, norm, random_start=True, restarts=restarts, seed=11,
        keep="last",
    )  # fmt: skip
    _assert_same_images(ours, want)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_keeps_per_image_the_first_fooling_or_highest_loss_iterate(trained, digits, norm):
    """keep="best" (the default): of the reference loop's iterates 0..steps (0: the start),
    each image keeps the first that fools the model, else the one of highest loss; the last
    iterate is not always it."""
    x, y = digits.test.x[:48], digits.test.y[:48]
    eps, steps = {"inf": 0.1, "2": 0.6}[norm], 6
    model = _as_attacked(trained)
    start = random_delta(x.shape, eps, norm, torch.Generator().manual_seed(2))
    iterates = torch.stack(
        [_reference(model, x, y, eps, k, 2.5 * eps / steps, norm, start) for k in range(steps + 1)]
    )
    with torch.no_grad():
        logits = torch.stack([model(it) for it in iterates])
    fooled = logits.argmax(2) != y
    loss = torch.stack([F.cross_entropy(z, y, reduction="none") for z in logits])
    first = fooled.double().argmax(0)  # the first fooling iterate
    highest = loss.argmax(0)
    pick = torch.where(fooled.any(0), first, highest)
    want = iterates[pick, torch.arange(len(x))]
    assert (pick != steps).any()  # the choice matters
    ours = pgd(trained, x, y, eps, steps, None, norm, random_start=True, seed=2)
    _assert_same_images(ours, want)
    last = pgd(trained, x, y, eps, steps, None, norm, random_start=True, seed=2, keep="last")
    _assert_same_images(last, iterates[-1])
