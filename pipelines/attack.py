"""Generate adversarial inputs against a trained model: FGSM, PGD, BIM (L∞, L2, L1) or DGNs.

Inputs: ``model_run`` (a train run; default the newest FINISHED one for ``dataset``), and for
``method=dgn`` optionally ``generators_run`` (an attack run whose DGNs are reused untrained)
and ``tuned_run`` (a tune run whose ``tuned/weights.json`` sets the weights not given).
Params: see ``Params``; ``preset=guided_retraining`` is seed 000's mix (L2-BIM, L1-BIM and
L∞-FGSM in thirds at ε = 0.05 over ``n_adv`` drawn inputs per split); ``method=dgn`` trains
one generator per class on ``dgn_split`` with ``loss`` (seed 004), then generates; by default
training sees the ε-clipped output (``dgn_clip``) and nce's cross-entropy is capped (``p_min``).
Metrics, per split S: ``S/clean_accuracy`` (the source model on the attacked clean inputs),
``S/adversarial_accuracy`` (on the adversarial set), ``S/success_rate``, ``S/linf_mean``,
``S/linf_max``, ``S/l2_mean``, ``S/l2_max``, ``S/samples_per_s``; with the preset also
``S/<attack>/adversarial_accuracy``. (``accuracy`` alone is never used here: in train and
advtrain runs ``test/accuracy`` is clean test accuracy.)
With ``dgn``: ``dgn/class<c>_loss`` per epoch, ``time/train_s`` and ``time/generate_s``.
Artifacts: ``adversarial/S.safetensors`` (x, y, index into the split, attack code),
``adversarial/attacks.json`` (code → attack and settings), ``grid/S.png``; with ``dgn`` also
``generators/`` (weights and per-class properties, safetensors + json).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

from pipelines import _cli, _params
from robust import attacks, faults, tracking
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.evaluation import report_adversarial_set
from robust.tracking.notes import percent
from robust.utils import resolve_device

SPLITS = ("train", "val", "test")
PRESET_EPS = 0.05
"""The preset's budget (seed 000), logged as the run's eps."""


@dataclass(frozen=True)
class Params(_params.Common):
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
    p_min: float | None = None
    """dgn nce: each input's cross-entropy is capped at -log p_min, in [0, 1); 0 is the seed's
    unbounded term; auto: 0.01."""
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
    spectrum_inputs: str = "noise"
    """dgn susp: hit spectra over each class's inputs and random-sign ±ε copies (noise: no
    attack oracle, so every loss stands on equal footing), their FGSM copies (fgsm), or the
    inputs alone (clean, the seed; on a split the model gets all right every unit scores 0)."""
    dgn_clip: str = "straight_through"
    """dgn: what training sees of the ε-clip: straight_through (the clipped output, gradient
    passed through the clamp), tanh (x + eps * tanh((x_gen - x) / eps), also at generation) or
    generation (the raw output; the clip only at generation, as the seed)."""
    route: str = "label"
    """dgn: each input goes to the generator of its label (seed 004) or of its prediction."""
    misclassified_only: bool = False
    """Keep only adversarial inputs whose prediction changed (indices kept; not the preset)."""
    tuned_run: str | None = None
    """dgn: a tune run whose tuned/weights.json gives the loss weights (and k, dgn_lr if it
    tuned them); weights given explicitly here override the tuned ones."""
    generators_run: str | None = None
    """dgn: an attack run whose generators are reused instead of training new ones."""
    batch_size: int | None = None
    """Inputs per forward/backward pass; auto: 1024 on CUDA, sized to the input on the CPU."""

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = {
            "method": attacks.METHODS, "norm": attacks.NORMS, "dgn_split": SPLITS,
            "loss": dgn.LOSSES, "architecture": ("auto", *dgn.ARCHITECTURES),
            "measure": faults.MEASURES, "spectrum_inputs": dgn.SPECTRUM_INPUTS,
            "dgn_clip": dgn.CLIPS, "route": dgn.ROUTES,
        }  # fmt: skip
        for name, allowed in choices.items():
            _cli.check_choice(name, getattr(self, name), allowed)
        if self.preset is not None:
            _cli.check_choice("preset", self.preset, attacks.PRESETS)
        for split in self.splits or ("",):
            _cli.check_choice("splits", split, SPLITS)
        if self.method == "dgn" and self.norm != "inf":
            raise ConfigError(f"method=dgn clips in the L∞ norm only, but got norm={self.norm}")
        if self.method == "dgn":
            dgn.LOSSES[self.loss].resolve({w: getattr(self, w) for w in dgn.WEIGHTS})
        for name in ("star", "dgn_lr", "step_size"):
            _cli.check_min(name, getattr(self, name), 0, strict=True)
        if self.p_min is not None and not 0 <= self.p_min < 1:
            raise ConfigError(f"p_min must be in [0, 1) (0: no bound), but got p_min={self.p_min}")
        if self.eps is not None:
            attacks.check_eps(self.eps, self.norm)  # L2/L1 again once the inputs are known
        for name in ("steps", "restarts", "batch_size", "n_adv", "dgn_epochs", "dgn_batch_size",
                     "k"):  # fmt: skip
            _cli.check_min(name, getattr(self, name), 1)


def run_name(p: Params, eps: float) -> str:
    """What the run is called in the UI: ``attack pgd ε=0.3``, ``attack dgn-nce``, ``attack
    guided_retraining``."""
    if p.preset:
        return f"attack {p.preset}"
    if p.method == "dgn":
        return f"attack dgn-{p.loss}"
    norm = "" if p.norm == "inf" else f" L{p.norm}"
    return f"attack {p.method}{norm} ε={eps:g}"


def main(p: Params) -> str:
    """Run (or reuse) the attack stage; return its run id."""
    up = tracking.Lineage(p.dataset)
    model_run = up.model_run(p.model_run)
    eps = p.eps if p.eps is not None else attacks.default_eps(p.dataset)
    eps = PRESET_EPS if p.preset else eps  # the preset fixes its attacks and budget
    upstream = {"model": model_run}
    if p.method == "dgn" and p.tuned_run is not None:  # tuned weights fill what was not given
        upstream["tuned"], tuned = up.tuned(p.tuned_run, p.loss)
        given = {k: v for k, v in tuned.items() if getattr(p, k) is None}
        p = dataclasses.replace(p, **given, tuned_run=upstream["tuned"])
    params = _cli.as_dict(p) | {"model_run": model_run, "eps": eps}
    if p.method == "dgn":
        params |= dgn.resolve_settings(p.dataset, p.loss, params)
        if p.generators_run is not None:
            upstream["generators"], trained_with = up.dgn_training(p.generators_run, model_run)
            params |= trained_with
    params = _applicable(p, params)
    with tracking.stage(
        "attack", params, dataset=p.dataset, upstream=upstream, force=p.force, quiet=p.quiet,
        data=up.data_source(model_run, p.data_dir), experiment=p.experiment,
        run_name=run_name(p, eps),
    ) as run:  # fmt: skip
        if run.reused:
            return run.run_id
        device = str(resolve_device(p.device))
        with run.phase("load"):
            ds, model = up.model_and_data(model_run, p.data_dir, device)
        if p.method == "dgn" and p.generators_run is not None:
            with run.phase("load_generators"):
                gens = up.generators(p.generators_run, device)
        elif p.method == "dgn":
            split = getattr(ds, p.dgn_split)
            with run.phase("train"):
                gens = dgn.train(
                    model, split.x, split.y, **dgn.train_options(params), seed=p.seed,
                    classes=range(ds.num_classes), progress=not p.quiet,
                    on_epoch=lambda c, e, loss: run.log_metrics({f"dgn/class{c}_loss": loss}, e),
                )  # fmt: skip
            run.log_artifacts(dgn.save(gens, run.outdir / "generators"), "generators")
        if p.method == "dgn":
            attack = attacks.AttackSpec("dgn", gens.eps, generators=gens, route=p.route)
        else:
            attack = p.preset or attacks.AttackSpec(
                p.method, eps, p.norm, steps=p.steps, step_size=p.step_size,
                restarts=p.restarts, use_predicted=p.use_predicted, seed=p.seed,
            )  # fmt: skip
        dgn_phase = p.method == "dgn"  # one generate phase over all splits; else one per split
        advs = {}
        with run.phase("generate") if dgn_phase else contextlib.nullcontext():
            for split in p.splits:
                with contextlib.nullcontext() if dgn_phase else run.phase(f"attack_{split}"):
                    advs[split] = attacks.craft_set(
                        attack, model, getattr(ds, split).x, getattr(ds, split).y,
                        n_adv=p.n_adv or len(ds.test), seed=p.seed, batch_size=p.batch_size,
                        misclassified_only=p.misclassified_only,
                    )  # fmt: skip
        lines = []
        for split, (adv, rate) in advs.items():
            grid = run.outdir / f"{split}.png"
            x = getattr(ds, split).x[adv.index]
            by_attack = p.preset is not None
            report = report_adversarial_set(model, x, adv, ds.classes, grid, by_attack=by_attack)
            lines.append(
                f"{split}: {len(adv.index)} inputs, success rate "
                f"**{percent(report['success_rate'])}**, the model's accuracy on them "
                f"{percent(report['accuracy'])} (clean {percent(report['clean_accuracy'])}), "
                f"mean L2 {report['l2_mean']:.3f}, max L∞ {report['linf_max']:.3f}"
            )
            run.log_metrics({f"{split}/{_key(k)}": v for k, v in report.items()})
            run.log_metrics({f"{split}/samples_per_s": rate})
            run.log_tensors(f"adversarial/{split}", **adv.tensors())
            run.log_artifact(grid, "grid")
        run.log_splits(ds, p.splits, model_run)
        run.log_adversarial_inputs(run.run_id, {s: len(a.index) for s, (a, _) in advs.items()}, ds)
        names = dict(enumerate(adv.names))
        run.log_dict({"attacks": names, "params": params}, "adversarial/attacks.json")
        run.describe(
            f"**{run_name(p, eps)}**: adversarial inputs crafted against "
            f"{tracking.notes.run_link(model_run)}.",
            tracking.notes.bullets(lines),
        )
        return run.run_id


ITERATIVE = ("steps", "step_size", "restarts")
"""Settings of the iterative gradient attacks (pgd, bim) only."""
DGN_ONLY = (*dgn.TRAINING, "route", "tuned_run", "generators_run")
"""Settings of method=dgn only."""
SUSP_ONLY = ("measure", "star", "spectrum_inputs")
"""Settings of the susp loss only."""


def _applicable(p: Params, params: dict) -> dict:
    """The params that shape this attack, as logged and keyed: a DGN setting only for dgn
    (a loss weight only for a loss that takes it, the spectra only for susp), the iterations
    only for pgd and bim, and the preset's own choice of methods (and its ``n_adv``) instead of
    the method's."""
    drop: set[str] = set()
    if p.method != "dgn" or p.preset:
        drop |= set(DGN_ONLY)
    else:
        drop |= {w for w in dgn.WEIGHTS if params.get(w) is None}
        drop |= set() if p.loss == "susp" else set(SUSP_ONLY)
    if p.method not in ("pgd", "bim") or p.preset:
        drop |= set(ITERATIVE)
    if p.preset:
        drop |= {"method", "norm", "use_predicted"}
    else:
        drop |= {"preset", "n_adv"}
    return {k: v for k, v in params.items() if k not in drop}


def _key(name: str) -> str:
    """A report's key as logged: ``accuracy`` on adversarial inputs says so."""
    return "adversarial_accuracy" if name == "accuracy" else name.replace(
        "/accuracy", "/adversarial_accuracy"
    )  # fmt: skip


if __name__ == "__main__":
    _cli.entry(main, Params)
