"""Generate adversarial inputs against a trained model: FGSM, PGD, BIM (L∞, L2, L1) or DGNs.

Inputs: ``model_run`` (a train run; default the newest FINISHED one for ``dataset``), and for
``method=dgn`` optionally ``generators_run`` (an attack run whose DGNs are reused untrained)
and ``tuned_run`` (a tune run whose ``tuned/weights.json`` sets the weights not given).
Params: see ``Params``; ``preset=guided_retraining`` is seed 000's mix (L2-BIM, L1-BIM and
L∞-FGSM in thirds at ε = 0.05 over ``n_adv`` drawn inputs per split); ``method=dgn`` trains
one generator per class on ``dgn_split`` with ``loss`` (seed 004), then generates.
Metrics, per split S: ``S/clean_accuracy``, ``S/accuracy`` (the source model on the
adversarial set), ``S/success_rate``, ``S/linf_mean``, ``S/linf_max``, ``S/l2_mean``,
``S/l2_max``, ``S/samples_per_s``; with the preset also ``S/<attack>/accuracy``.
With ``dgn``: ``dgn/class<c>_loss`` per epoch, ``time/train_s`` and ``time/generate_s``.
Artifacts: ``adversarial/S.safetensors`` (x, y, index into the split, attack code),
``adversarial/attacks.json`` (code → attack and settings), ``grid/S.png``; with ``dgn`` also
``generators/`` (weights and per-class properties, safetensors + json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass

import torch

from pipelines import _cli, _dgn, _upstream
from robust import attacks, data, faults, tracking
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.evaluation import attack_report, plot_adversarial_grid
from robust.utils import DEVICES, resolve_device

METHODS = ("fgsm", "pgd", "bim", "dgn")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the model (used to find the newest train run when model_run is auto)."""
    model_run: str | None = None
    """Train run whose model is attacked; auto: the newest FINISHED one on dataset."""
    method: str = "pgd"
    """fgsm, pgd, bim (pgd without random start) or dgn (per-class generators, seed 004)."""
    eps: float | None = None
    """Budget in the norm; auto: 0.3 for digits/mnist/fashion, 8/255 otherwise."""
    norm: str = "inf"
    """inf, 2 or 1."""
    steps: int = 20
    """Iterations of pgd and bim."""
    step_size: float | None = None
    """Absolute step of pgd and bim; auto: 2.5 * eps / steps."""
    restarts: int = 1
    """pgd restarts; each input keeps its strongest result."""
    use_predicted: bool = False
    """Attack the model's predictions instead of the true labels (seed 004)."""
    splits: tuple[str, ...] = ("train", "test")
    """Comma-separated splits to attack."""
    preset: str | None = None
    """guided_retraining: seed 000's mix (overrides method, eps, norm, steps)."""
    n_adv: int | None = None
    """Inputs per split for the preset; auto: the size of the test split (as the seed)."""
    loss: str = "nce"
    """dgn: the generators' loss, lrp, nce, susp (or one registered in Python)."""
    alpha: float | None = None
    """dgn: loss weight α; auto: the loss's default (lrp 0.5, nce 1, susp 0.8)."""
    beta: float | None = None
    """dgn: nce's cross-entropy weight β; auto: 1."""
    lam: float | None = None
    """dgn: susp's suspicious-unit weight λ; auto: 0.5."""
    gamma: float | None = None
    """dgn: susp's other-unit weight γ; auto: 0.5."""
    dgn_epochs: int | None = None
    """dgn: epochs per class; auto: seed 004's for mnist/fashion/cifar10, 100 on digits."""
    dgn_lr: float | None = None
    """dgn: Adam learning rate; auto: as dgn_epochs."""
    dgn_batch_size: int | None = None
    """dgn: training batch size; auto: as dgn_epochs."""
    dgn_split: str = "train"
    """dgn: the split the generators learn from."""
    architecture: str = "auto"
    """dgn: generator architecture, auto (by input size), mnist, cifar, digits or fitting."""
    k: int | None = None
    """dgn: top-k relevant inputs (lrp; auto 20 per 784 inputs) or suspicious units (susp; 20)."""
    measure: str = "tarantula"
    """dgn susp: suspiciousness measure, tarantula, ochiai or dstar."""
    star: float = 2.0
    """dgn susp: the star of dstar."""
    spectrum_inputs: str = "fgsm"
    """dgn susp: hit spectra over each class's inputs and their FGSM counterparts, or clean."""
    route: str = "label"
    """dgn: each input goes to the generator of its label (seed 004) or of its prediction."""
    misclassified_only: bool = False
    """dgn: keep only generated inputs whose prediction changed (indices kept)."""
    tuned_run: str | None = None
    """dgn: a tune run whose tuned/weights.json gives the loss weights (and k, dgn_lr if it
    tuned them); weights given explicitly here override the tuned ones."""
    generators_run: str | None = None
    """dgn: an attack run whose generators are reused instead of training new ones."""
    seed: int = 0
    """Seed of the random starts, the preset's draw and the generators."""
    batch_size: int | None = None
    """Inputs per forward/backward pass; auto: 1024 on CUDA, sized to the input on the CPU."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    data_dir: str | None = None
    """Dataset directory; auto: the train run's."""
    force: bool = False
    """Recompute even if an identical FINISHED run exists."""
    quiet: bool = False
    """Less logging."""

    def __post_init__(self) -> None:
        _cli.check_choice("dataset", self.dataset, data.DATASETS)
        _cli.check_choice("method", self.method, METHODS)
        _cli.check_choice("norm", self.norm, attacks.NORMS)
        _cli.check_choice("device", self.device, DEVICES)
        if self.preset is not None:
            _cli.check_choice("preset", self.preset, attacks.PRESETS)
        for split in self.splits or ("",):
            _cli.check_choice("splits", split, SPLITS)
        _cli.check_choice("dgn_split", self.dgn_split, SPLITS)
        _cli.check_choice("loss", self.loss, dgn.LOSSES)
        _cli.check_choice("architecture", self.architecture, ("auto", *dgn.ARCHITECTURES))
        _cli.check_choice("measure", self.measure, faults.MEASURES)
        _cli.check_choice("spectrum_inputs", self.spectrum_inputs, dgn.SPECTRUM_INPUTS)
        _cli.check_choice("route", self.route, dgn.ROUTES)
        if self.method == "dgn" and self.norm != "inf":
            raise ConfigError(f"method=dgn clips in the L∞ norm only, but got norm={self.norm}")
        if self.method == "dgn":
            dgn.LOSSES[self.loss].resolve({w: getattr(self, w) for w in _dgn.WEIGHTS})
        _cli.check_min("star", self.star, 0, strict=True)
        _cli.check_min("dgn_lr", self.dgn_lr, 0, strict=True)
        _cli.check_min("eps", self.eps, 0)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        for name in (
            "steps",
            "restarts",
            "batch_size",
            "n_adv",
            "dgn_epochs",
            "dgn_batch_size",
            "k",
        ):
            _cli.check_min(name, getattr(self, name), 1)


def main(p: Params) -> str:
    """Run (or reuse) the attack stage; return its run id."""
    model_run = _upstream.model_run(p.model_run, p.dataset)
    eps = p.eps if p.eps is not None else dgn.EPS.get(p.dataset, 8 / 255)
    if p.preset == "guided_retraining":  # the preset fixes its attacks and budget
        eps = 0.05
    upstream = {"model": model_run}
    if p.method == "dgn" and p.tuned_run is not None:  # tuned weights fill what was not given
        upstream["tuned"], tuned = _dgn.tuned(p.tuned_run, p.loss)
        p = dataclasses.replace(p, **{k: v for k, v in tuned.items() if getattr(p, k) is None})
        p = dataclasses.replace(p, tuned_run=upstream["tuned"])
    params = _cli.as_dict(p) | {"model_run": model_run, "eps": eps}
    if p.method == "dgn":
        params |= _dgn.resolved(p)
        if p.generators_run is not None:
            upstream["generators"], trained_with = _dgn.generators_run(p.generators_run, model_run)
            params |= trained_with
    with tracking.stage(
        "attack",
        params,
        dataset=p.dataset,
        upstream=upstream,
        force=p.force,
        quiet=p.quiet,
    ) as run:
        if run.reused:
            return run.run_id
        with run.phase("load"):
            ds = _upstream.dataset_of(model_run, p.data_dir)
            model = _upstream.model_of(model_run, str(resolve_device(p.device)))
        gens = _dgn.generators(run, p, params, model, ds) if p.method == "dgn" else None
        advs, rates = {}, {}
        one_phase = run.phase("generate") if gens else contextlib.nullcontext()
        with one_phase:  # dgn: one generate phase over all splits; the others one per split
            for split in p.splits:
                x, y = getattr(ds, split).x, getattr(ds, split).y
                with contextlib.nullcontext() if gens else run.phase(f"attack_{split}"):
                    t0 = time.perf_counter()
                    if gens is not None:
                        advs[split] = _dgn.generate(gens, model, x, y, p)
                    else:
                        advs[split] = _generate(model, x, y, eps, p, p.n_adv or len(ds.test))
                    n = len(x) if gens else len(advs[split].x)
                    rates[split] = n / (time.perf_counter() - t0)
        names: dict[int, str] = {}
        for split, adv in advs.items():
            x_src = getattr(ds, split).x[adv.index]
            report = attack_report(
                model,
                x_src,
                adv.x,
                adv.y,
                groups=adv.attack,
                group_names=adv.names if p.preset else (),
            )
            run.log_metrics(
                {f"{split}/{k}": v for k, v in report.items()}
                | {f"{split}/samples_per_s": rates[split], f"{split}/n_adv": len(adv.x)}
            )
            names = dict(enumerate(adv.names))
            run.log_tensors(
                f"adversarial/{split}", x=adv.x, y=adv.y, index=adv.index, attack=adv.attack
            )
            plot_adversarial_grid(
                model, x_src, adv.x, adv.y, ds.classes, run.outdir / f"{split}.png"
            )
            run.log_artifact(run.outdir / f"{split}.png", "grid")
        run.log_dict({"attacks": names, "params": params}, "adversarial/attacks.json")
        return run.run_id


def _generate(model, x, y, eps, p: Params, n_adv: int) -> attacks.AdversarialSet:
    """One attack over the whole split, or the preset's mix over n_adv drawn inputs."""
    if p.preset == "guided_retraining":
        return attacks.guided_retraining(
            model, x, y, min(n_adv, len(x)), seed=p.seed, batch_size=p.batch_size
        )
    common = {"use_predicted": p.use_predicted, "batch_size": p.batch_size}
    if p.method == "fgsm":
        x_adv = attacks.fgsm(model, x, y, eps, p.norm, **common)
    elif p.method == "bim":
        x_adv = attacks.bim(model, x, y, eps, p.steps, p.step_size, p.norm, **common)
    else:
        x_adv = attacks.pgd(
            model,
            x,
            y,
            eps,
            p.steps,
            p.step_size,
            p.norm,
            restarts=p.restarts,
            seed=p.seed,
            **common,
        )
    name = f"{p.method}_l{p.norm}"
    return attacks.AdversarialSet(
        x_adv, y, torch.arange(len(x)), torch.zeros(len(x), dtype=torch.int64), (name,)
    )


if __name__ == "__main__":
    _cli.entry(main, Params)
