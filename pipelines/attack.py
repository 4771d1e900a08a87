"""Generate adversarial inputs against a trained model with FGSM, PGD or BIM (L∞, L2, L1).

Inputs: ``model_run`` (a train run; default the newest FINISHED one for ``dataset``).
Params: see ``Params``; ``preset=guided_retraining`` is seed 000's mix (L2-BIM, L1-BIM and
L∞-FGSM in thirds at ε = 0.05 over ``n_adv`` drawn inputs per split).
Metrics, per split S: ``S/clean_accuracy``, ``S/accuracy`` (the source model on the
adversarial set), ``S/success_rate``, ``S/linf_mean``, ``S/linf_max``, ``S/l2_mean``,
``S/l2_max``, ``S/samples_per_s``; with the preset also ``S/<attack>/accuracy``.
Artifacts: ``adversarial/S.safetensors`` (x, y, index into the split, attack code),
``adversarial/attacks.json`` (code → attack and settings), ``grid/S.png``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pipelines import _cli, _upstream
from robust import attacks, data, tracking
from robust.evaluation import attack_report, plot_adversarial_grid
from robust.utils import DEVICES, resolve_device

METHODS = ("fgsm", "pgd", "bim")
SPLITS = ("train", "val", "test")
EPS = {"digits": 0.3, "mnist": 0.3, "fashion": 0.3}  # others: 8/255, as seed 004's CIFAR


@dataclass(frozen=True)
class Params:
    dataset: str = "digits"
    """Dataset of the model (used to find the newest train run when model_run is auto)."""
    model_run: str | None = None
    """Train run whose model is attacked; auto: the newest FINISHED one on dataset."""
    method: str = "pgd"
    """fgsm, pgd or bim (pgd without random start)."""
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
    seed: int = 0
    """Seed of the random starts and of the preset's draw."""
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
        _cli.check_min("eps", self.eps, 0)
        _cli.check_min("step_size", self.step_size, 0, strict=True)
        for name in ("steps", "restarts", "batch_size", "n_adv"):
            _cli.check_min(name, getattr(self, name), 1)


def main(p: Params) -> str:
    """Run (or reuse) the attack stage; return its run id."""
    model_run = _upstream.model_run(p.model_run, p.dataset)
    eps = p.eps if p.eps is not None else EPS.get(p.dataset, 8 / 255)
    if p.preset == "guided_retraining":  # the preset fixes its attacks and budget
        eps = 0.05
    params = _cli.as_dict(p) | {"model_run": model_run, "eps": eps}
    with tracking.stage(
        "attack",
        params,
        dataset=p.dataset,
        upstream={"model": model_run},
        force=p.force,
        quiet=p.quiet,
    ) as run:
        if run.reused:
            return run.run_id
        with run.phase("load"):
            ds = _upstream.dataset_of(model_run, p.data_dir)
            model = _upstream.model_of(model_run, str(resolve_device(p.device)))
        names: dict[int, str] = {}
        for split in p.splits:
            x, y = getattr(ds, split).x, getattr(ds, split).y
            with run.phase(f"attack_{split}"):
                t0 = time.perf_counter()
                adv = _generate(model, x, y, eps, p, n_adv=p.n_adv or len(ds.test))
                rate = len(adv.x) / (time.perf_counter() - t0)
            x_src = x[adv.index]
            report = attack_report(
                model,
                x_src,
                adv.x,
                adv.y,
                groups=adv.attack,
                group_names=adv.names if p.preset else (),
            )
            run.log_metrics(
                {f"{split}/{k}": v for k, v in report.items()} | {f"{split}/samples_per_s": rate}
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
