"""Train one DGN per class, then generate adversarial inputs with one forward pass each.

Thesis §4.2–4.4 (Figs. 4.2–4.3), seed code ``DataGeneratorNetwork.py``/``DataGenerator.py``.
Differences from the seed code, on purpose:

* every class's generator gets its own class's properties (the seed shared one class's
  suspicious set among all ten);
* batches are shuffled with a seeded generator and the last, partial batch is kept (the seed
  used fixed slices in dataset order and dropped it); batch-norm statistics see training data
  only;
* ε-clipping (Eq. 4.8) is one vectorised clamp of x̃ − x to [−ε, ε] then [0, 1] (the seed
  looped over pixels in Python). Eq. 4.8 is read as the seed code does it, element-wise: a
  pixel whose |x̃ − x| exceeds ε is set to x ± ε (its sign kept), the others are untouched,
  then [0, 1]; not as a sign step of every pixel, which its cases read literally would be;
* training can see the deployed, ε-clipped output (``clip="straight_through"`` or ``"tanh"``)
  instead of the raw one (``clip="generation"``, the seed): the seed trained the generators on
  an objective other than the attack it deployed, since the clip came only after generation;
* generation can route an input by the model's prediction instead of its label
  (``route="prediction"``): it works on unlabelled data and does not leak the label through
  a class-specific perturbation pattern (code notes §6).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from robust.attacks._common import check_count, check_inputs, check_positive
from robust.attacks.dgn._architectures import CAE, auto_architecture, build
from robust.attacks.dgn._grouped import stack, unstack
from robust.attacks.dgn._losses import LossContext, get_loss
from robust.attacks.dgn._properties import PROPERTIES
from robust.errors import ConfigError, DataError
from robust.models.predict import predict
from robust.utils import eval_mode, model_device

ROUTES = ("label", "prediction")
SPECTRUM_INPUTS = ("fgsm", "noise", "clean")
DEFAULT_SPECTRUM_INPUTS = "noise"
CLIPS = ("straight_through", "tanh", "generation")
"""How training treats the ε-clip (:func:`train`'s ``clip``, :func:`train_view`)."""
DEFAULT_CLIP = "straight_through"
FORMAT_VERSION = 1
WEIGHTS_FILE = "generators.safetensors"
SPEC_FILE = "generators.json"

EpochCallback = Callable[[int, int, float], None]
"""``on_epoch(label, epoch, mean_loss)``, epoch counted from 1."""


def eps_clip(x: Tensor, x_gen: Tensor, eps: float, clip: str = "generation") -> Tensor:
    """The deployed attack: Eq. 4.8, each element's perturbation clamped to [−ε, ε] (its sign
    kept), then to [0, 1]. With ``clip="tanh"`` the perturbation is first squashed to
    ε·tanh((x̃ − x)/ε) (:func:`tanh_clip`), which the clamps then leave as it is.

    Args:
        x: (N, C, H, W) clean inputs in [0, 1]; x_gen: the generator's raw outputs, same shape.
        eps: the L∞ budget.
        clip: a :data:`CLIPS` mode; only ``tanh`` changes what is deployed.

    Returns:
        Same shape as x, within ε of x in L∞ and in [0, 1].
    """
    if clip not in CLIPS:
        raise ConfigError(f"clip must be one of {', '.join(CLIPS)}, but got {clip=}")
    if clip == "tanh":
        x_gen = tanh_clip(x, x_gen, eps)
    return (x + (x_gen - x).clamp(-eps, eps)).clamp(0.0, 1.0)


def tanh_clip(x: Tensor, x_gen: Tensor, eps: float) -> Tensor:
    """x + ε·tanh((x̃ − x)/ε): a smooth ε-clip, differentiable everywhere, sign kept.

    |ε·tanh(δ/ε)| ≤ min(|δ|, ε), so the result lies between x and x̃: within ε of x and, as
    both are, in [0, 1]. It shrinks perturbations inside the budget too (by 24 % at δ = ε/2).
    """
    return x + eps * torch.tanh((x_gen - x) / eps)


def train_view(x: Tensor, x_gen: Tensor, eps: float, clip: str) -> Tensor:
    """What the training loss sees of the generator's raw output ``x_gen`` under ``clip``.

    * ``generation`` (seed 004): ``x_gen`` itself; the ε-clip comes only at generation, so the
      loss is not that of the deployed attack and rewards perturbations the clip removes;
    * ``straight_through``: forward the deployed :func:`eps_clip`, backward the identity, so
      the loss is that of the deployed attack and an element outside the budget still gets a
      gradient (a plain clamp's is zero there, and a saturated generator could not move back);
    * ``tanh``: the deployed :func:`eps_clip` with ``clip="tanh"``, an exact gradient.

    Raises:
        ConfigError: an unknown mode.
    """
    if clip == "generation":
        return x_gen
    if clip == "straight_through":
        return x_gen + (eps_clip(x, x_gen, eps) - x_gen).detach()
    if clip == "tanh":
        return eps_clip(x, x_gen, eps, "tanh")
    raise ConfigError(f"clip must be one of {', '.join(CLIPS)}, but got {clip=}")


class Generators(nn.Module):
    """One trained DGN per class, with what is needed to generate and to reproduce them.

    Attributes:
        nets: ``nets[str(c)]`` is class c's generator.
        eps: L∞ budget applied by :meth:`generate`.
        spec: architecture, input shape, class count, loss, weights and training settings
            (``clip`` among them: absent in generators saved before it existed, which trained
            with ``generation``).
        properties: per class, the problem-specific properties its loss used.
        history: per class, the mean training loss of each epoch.
    """

    def __init__(
        self,
        nets: Mapping[int, CAE],
        *,
        eps: float,
        spec: Mapping[str, Any],
        properties: Mapping[int, Mapping[str, Any]] | None = None,
        history: Mapping[int, Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({str(c): net for c, net in sorted(nets.items())})
        self.eps = float(eps)
        self.spec = dict(spec)
        self.properties = {c: dict(p) for c, p in (properties or {}).items()}
        self.history = {c: list(h) for c, h in (history or {}).items()}

    @property
    def classes(self) -> tuple[int, ...]:
        """The classes that have a generator."""
        return tuple(int(c) for c in self.nets)

    @property
    def clip(self) -> str:
        """How training treated the ε-clip (:data:`CLIPS`); ``tanh`` also changes generation."""
        return str(self.spec.get("clip", "generation"))

    def forward(self, x: Tensor, label: int) -> Tensor:
        """Class ``label``'s raw generator output (no clipping), with gradient."""
        return self.nets[str(label)](x)

    @torch.no_grad()
    def generate(
        self,
        x: Tensor,
        y: Tensor | None = None,
        *,
        model: nn.Module | None = None,
        route: str = "label",
        batch_size: int = 1024,
    ) -> Tensor:
        """Adversarial inputs: each input through its class's DGN, then ε-clipping (Eq. 4.8;
        after the tanh squash for generators trained with ``clip="tanh"``).

        Args:
            x: (N, C, H, W) float32 in [0, 1], on any device.
            y: (N,) int64 labels; required for ``route="label"``.
            model: the target classifier; required for ``route="prediction"``.
            route: ``label`` (the seed: the DGN of the true class) or ``prediction`` (the DGN of
                the model's predicted class; needs no labels).
            batch_size: inputs per forward pass.

        Returns:
            (N, C, H, W) float32 on x's device, within ε of x in L∞ and in [0, 1].
        """
        if route not in ROUTES:
            raise ConfigError(f"route must be one of {', '.join(ROUTES)}, but got {route=}")
        check_count("batch_size", batch_size)
        check_inputs(x, y, use_predicted=route == "prediction")
        if route == "prediction":
            if model is None:
                raise ConfigError('route="prediction" needs the target model, but got model=None')
            routes = predict(model, x, batch_size=batch_size).argmax(1).to(x.device)
        else:
            routes = y.to(x.device, torch.int64)
        missing = sorted(set(torch.unique(routes).tolist()) - set(self.classes))
        if missing:
            raise ConfigError(
                f"every input must route to a class with a generator ({list(self.classes)}), "
                f"but {len(missing)} classes have none: {missing[:10]}"
            )
        device, clip = model_device(self), self.clip
        order = torch.argsort(routes, stable=True)
        counts = torch.bincount(routes, minlength=max(self.classes) + 1).tolist()
        x_sorted = x[order]
        out = torch.empty_like(x_sorted)
        with eval_mode(self):
            start = 0
            for c, n in enumerate(counts):
                for i in range(start, start + n, batch_size):
                    xb = x_sorted[i : min(i + batch_size, start + n)].to(device, non_blocking=True)
                    out[i : i + len(xb)] = eps_clip(xb, self.nets[str(c)](xb), self.eps, clip)
                start += n
        result = torch.empty_like(x)
        result[order] = out
        return result


def train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss: str = "nce",
    *,
    eps: float,
    epochs: int = 50,
    lr: float = 1e-3,
    batch_size: int = 100,
    architecture: str = "auto",
    classes: Sequence[int] | None = None,
    k: int | None = None,
    rule: str = "epsilon",
    measure: str = "tarantula",
    star: float = 2.0,
    threshold: float = 0.0,
    spectrum_inputs: str = DEFAULT_SPECTRUM_INPUTS,
    clip: str = DEFAULT_CLIP,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    init: Generators | None = None,
    **weights: float | None,
) -> Generators:
    """Train one DGN per class against a frozen target model (thesis Fig. 4.2).

    Each class's generator sees only that class's inputs, with Adam (TF1 defaults, constant
    learning rate as in five of the seed's six configurations). All classes train at once as
    one grouped network, which is the same as training them one by one.

    Args:
        model: target classifier returning logits; frozen (eval mode, no ``.grad`` written).
        x: (N, C, H, W) float32 in [0, 1], the generators' training inputs; y: (N,) labels.
        loss: a registered loss (:data:`LOSSES`): ``lrp``, ``nce``, ``susp`` or your own.
        eps: L∞ budget (the LRP loss's target shift and the generation clip).
        epochs, lr, batch_size: per-class training schedule.
        architecture: ``auto`` (by input size), ``mnist``, ``cifar``, ``digits``, ``fitting``.
        classes: classes to train generators for; default every class in 0..max(y).
        k: top-k relevant inputs / suspicious units; default 20 suspicious units and
            :func:`robust.explain.default_k` relevant inputs.
        rule: LRP rule for the relevant inputs (``lrp`` loss).
        measure, star, threshold: suspiciousness measure, D*'s star and the activation
            threshold of the hit spectra (``susp`` loss).
        spectrum_inputs: the inputs of each class's hit spectra: ``noise`` (default: its
            inputs and random-sign ±ε copies of them, so that a model that gets every training
            input right still has failing runs, and no loss draws on a gradient attack: the
            losses compare on equal footing), ``fgsm`` (its inputs and their FGSM(ε) copies:
            the susp loss alone then draws on an attack oracle) or ``clean`` (its inputs only,
            as the seed, which used a test set the model got 3.4 % wrong). ``clean`` spectra of
            a training split the model gets all right score every unit 0 and pick units by
            index. On digits (30 epochs, straight-through clip) susp's success is 0.781 with
            ``noise``, 0.865 with ``fgsm`` and 0.031 with ``clean``.
        clip: how training treats the ε-clip (:func:`train_view`): ``straight_through``
            (default: the loss sees the deployed, clipped output and the gradient passes the
            clamp), ``tanh`` (a smooth clip, also at generation) or ``generation`` (the seed:
            the loss sees the raw output, the clip comes only at generation). Recorded in the
            spec, so :func:`train_further`, :func:`save` and :func:`load` keep it.
        seed: seeds initialisation and shuffling (class c uses ``seed`` and c).
        on_epoch: called as ``on_epoch(label, epoch, mean_loss)`` after each epoch.
        progress: show a tqdm bar.
        init: continue from these generators' weights instead of fresh ones (same architecture
            and input shape, a generator for every class in ``classes``); Adam's moments start
            afresh. Online DGN adversarial training uses it.
        **weights: the loss's weights by name (``alpha``, ``beta``, ``lam``, ``gamma``);
            ``None`` keeps the default.

    Returns:
        The trained :class:`Generators` on the model's device, in eval mode.
    """
    spec = get_loss(loss)
    resolved = spec.resolve(weights)
    check_inputs(x, y, use_predicted=False)
    check_positive("eps", eps)
    check_positive("lr", lr)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        check_count(name, value)
    y = y.to(torch.int64)
    labels_present = torch.unique(y.cpu()).tolist()
    if classes is None:
        classes = list(range(int(max(labels_present)) + 1)) if labels_present else []
    classes = [int(c) for c in classes]
    absent = sorted(set(classes) - set(labels_present))
    if not classes or absent:
        raise DataError(
            f"every class needs training inputs to train its generator, but classes {absent} "
            f"have none among {len(x)} inputs"
        )
    input_shape = tuple(x.shape[1:])
    arch = auto_architecture(input_shape) if architecture == "auto" else architecture
    build(arch, input_shape)  # check the architecture before any work
    if init is not None:
        _check_init(init, arch, input_shape, classes)
    device = model_device(model)
    if spectrum_inputs not in SPECTRUM_INPUTS:
        raise ConfigError(
            f"spectrum_inputs must be one of {', '.join(SPECTRUM_INPUTS)}, but got "
            f"{spectrum_inputs=}"
        )
    if clip not in CLIPS:
        raise ConfigError(f"clip must be one of {', '.join(CLIPS)}, but got {clip=}")
    options = {
        "k": k, "rule": rule, "measure": measure, "star": star, "threshold": threshold,
        "spectrum_inputs": spectrum_inputs,
    }  # fmt: skip
    properties: dict[int, dict[str, Any]] = {c: {} for c in classes}
    for need in spec.needs:
        for c, value in PROPERTIES[need](model, x, y, classes, eps=eps, **options).items():
            properties[c][need] = value

    contexts = [LossContext(model, c, float(eps), properties[c]) for c in classes]
    bar = tqdm(total=epochs, desc=f"DGN ({loss}, {len(classes)} classes)", disable=not progress)
    with eval_mode(model):
        nets, history = _train_all(
            arch, x, y, contexts, spec.fn, resolved, device, clip=clip,
            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, on_epoch=on_epoch, bar=bar,
            init=init,
        )  # fmt: skip
    bar.close()
    meta = {
        "architecture": arch,
        "input_shape": list(input_shape),
        "num_classes": max(classes) + 1,
        "loss": loss,
        "weights": resolved,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "clip": clip,
    } | {key: value for key, value in options.items()}
    return Generators(nets, eps=eps, spec=meta, properties=properties, history=history).eval()


_OPTIONS = ("k", "rule", "measure", "star", "threshold", "spectrum_inputs")
"""Training options a generators' spec records that :func:`train` takes back (and ``clip``)."""


def train_further(
    generators: Generators,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
) -> Generators:
    """New generators: ``generators`` trained ``epochs`` more epochs against ``model`` with the
    loss, weights, schedule, ε-clip mode and options they were trained with (their ``spec``;
    generators saved before ``clip`` existed continue with ``generation``); the loss's
    properties (relevance, suspicious units) are recomputed against ``model``, Adam's moments
    start afresh, ``generators`` is left unchanged. Online DGN adversarial training and the
    adaptive DGN attack (a DGN trained against the very model it attacks) use it.

    Example:
        >>> adapted = dgn.train_further(gens, hardened_model, x_train, y_train, epochs=10)
    """
    spec = generators.spec
    return train(
        model, x, y, spec["loss"], eps=generators.eps, epochs=epochs, lr=spec["lr"],
        batch_size=spec["batch_size"], architecture=spec["architecture"],
        classes=generators.classes, seed=seed, on_epoch=on_epoch, progress=progress,
        init=generators, clip=generators.clip, **{k: spec[k] for k in _OPTIONS if k in spec},
        **spec.get("weights", {}),
    )  # fmt: skip


def _train_all(
    arch: str,
    x: Tensor,
    y: Tensor,
    contexts: Sequence[LossContext],
    loss_fn: Callable[..., Tensor],
    weights: Mapping[str, float],
    device: torch.device,
    *,
    clip: str = "generation",
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    on_epoch: EpochCallback | None,
    bar: tqdm,
    init: Generators | None = None,
) -> tuple[dict[int, CAE], dict[int, list[float]]]:
    """Train every class's generator at once as one grouped network (:mod:`._grouped`).

    Each epoch has ``ceil(n_max / batch_size)`` steps, n_max the largest class's input count;
    every step feeds each class a full batch from its own seeded stream of permutations, so a
    smaller class wraps around into its next permutation within the epoch. The loss sees each
    output as :func:`train_view` shows it under ``clip``.
    """
    labels = [ctx.label for ctx in contexts]
    members = [torch.nonzero(y.cpu() == c)[:, 0] for c in labels]
    nets = []
    for c in labels:  # the same initial weights as training each class alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_class_seed(seed, c))
            nets.append(build(arch, tuple(x.shape[1:])).to(device))
        if init is not None:
            nets[-1].load_state_dict(init.nets[str(c)].state_dict())
    grouped = stack(nets).train()
    params = list(grouped.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, eps=1e-8)  # TF1 AdamOptimizer defaults
    streams = [_Stream(m, _class_seed(seed, c)) for m, c in zip(members, labels, strict=True)]
    steps = math.ceil(max(len(m) for m in members) / batch_size)
    channels = x.shape[1]
    history: dict[int, list[float]] = {c: [] for c in labels}
    for epoch in range(1, epochs + 1):
        totals = torch.zeros(len(labels), device=device)
        for _ in range(steps):
            xbs = [x[s.take(batch_size)].to(device, non_blocking=True) for s in streams]
            outs = grouped(torch.cat(xbs, 1)).split(channels, 1)
            values = torch.stack(
                [
                    loss_fn(xb, train_view(xb, out, ctx.eps, clip), ctx, **weights)
                    for xb, out, ctx in zip(xbs, outs, contexts, strict=True)
                ]
            )
            grads = torch.autograd.grad(values.sum(), params, allow_unused=True)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            optimizer.step()
            totals += values.detach()
        means = (totals / steps).tolist()
        for c, mean in zip(labels, means, strict=True):
            if not math.isfinite(mean):
                raise DataError(
                    f"the DGN loss must stay finite, but class {c}'s became {mean} at epoch "
                    f"{epoch}; lower lr or the loss weights"
                )
            history[c].append(mean)
            if on_epoch is not None:
                on_epoch(c, epoch, mean)
        bar.update(1)
        bar.set_postfix(loss=f"{sum(means) / len(means):.4g}")
    unstack(grouped, nets)
    return {c: net.eval() for c, net in zip(labels, nets, strict=True)}, history


def _check_init(
    init: Generators, arch: str, input_shape: tuple[int, ...], classes: Sequence[int]
) -> None:
    """Raise a ConfigError unless ``init`` can seed the generators about to be trained."""
    shape = tuple(init.spec.get("input_shape", ()))
    missing = sorted(set(classes) - set(init.classes))
    if init.spec.get("architecture") != arch or shape != input_shape or missing:
        raise ConfigError(
            f"init must hold {arch} generators for inputs {input_shape} and classes "
            f"{list(classes)}, but holds {init.spec.get('architecture')} generators for inputs "
            f"{shape}" + (f" without classes {missing}" if missing else "")
        )


class _Stream:
    """An endless, seeded stream of one class's input indices, one permutation after another."""

    def __init__(self, members: Tensor, seed: int) -> None:
        self.members = members
        self.generator = torch.Generator().manual_seed(seed)
        self.buffer = members[:0]

    def take(self, n: int) -> Tensor:
        while len(self.buffer) < n:
            perm = torch.randperm(len(self.members), generator=self.generator)
            self.buffer = torch.cat([self.buffer, self.members[perm]])
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


def _class_seed(seed: int, label: int) -> int:
    return (seed * 1_000_003 + label) % 2**63


def save(generators: Generators, directory: str | os.PathLike[str]) -> Path:
    """Write ``generators.safetensors`` (weights and properties) and ``generators.json``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"net.{k}": v.detach().cpu().contiguous() for k, v in generators.nets.state_dict().items()
    }
    for c, props in generators.properties.items():
        for name, value in props.items():
            if isinstance(value, Tensor):
                tensors[f"prop.{c}.{name}"] = value.cpu().contiguous()
            else:  # {layer: indices}
                for layer, idx in value.items():
                    tensors[f"prop.{c}.{name}.{layer}"] = idx.cpu().contiguous()
    save_file(tensors, out / WEIGHTS_FILE)
    spec = {
        "format_version": FORMAT_VERSION,
        "eps": generators.eps,
        "classes": list(generators.classes),
        "history": {str(c): h for c, h in generators.history.items()},
    } | generators.spec
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    return out


def load(directory: str | os.PathLike[str], device: str | torch.device = "cpu") -> Generators:
    """Rebuild generators saved by :func:`save` (safetensors; nothing is unpickled)."""
    path = Path(directory)
    try:
        spec = json.loads((path / SPEC_FILE).read_text())
        tensors = load_file(path / WEIGHTS_FILE)
    except (OSError, ValueError, SafetensorError) as err:
        raise DataError(f"directory must hold saved DGN generators, but {path}: {err}") from None
    if spec.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"generators must have format_version {FORMAT_VERSION}, but got "
            f"{spec.get('format_version')!r} in {path / SPEC_FILE}"
        )
    shape = tuple(spec["input_shape"])
    nets = {int(c): build(spec["architecture"], shape) for c in spec["classes"]}
    state = {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}
    module = nn.ModuleDict({str(c): net for c, net in sorted(nets.items())})
    module.load_state_dict(state)
    properties: dict[int, dict[str, Any]] = {c: {} for c in nets}
    for key, value in tensors.items():
        if key.startswith("prop."):
            _, c, name, *layer = key.split(".", 3)
            if layer:
                properties[int(c)].setdefault(name, {})[layer[0]] = value
            else:
                properties[int(c)][name] = value
    rest = {
        k: v for k, v in spec.items() if k not in ("format_version", "eps", "classes", "history")
    }
    history = {int(c): h for c, h in spec.get("history", {}).items()}
    gens = Generators(nets, eps=spec["eps"], spec=rest, properties=properties, history=history)
    return gens.to(device).eval()
