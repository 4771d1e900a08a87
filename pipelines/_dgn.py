"""The attack stage's DGN method: resolve its defaults, train or reuse generators, generate."""

from __future__ import annotations

from typing import Any

import torch

from robust import attacks, data, tracking
from robust.attacks import dgn
from robust.errors import ConfigError
from robust.evaluation import predict

WEIGHTS = ("alpha", "beta", "lam", "gamma")
TRAINING = (
    *WEIGHTS, "loss", "dgn_epochs", "dgn_lr", "dgn_batch_size", "dgn_split", "architecture",
    "k", "measure", "star", "spectrum_inputs",
)  # fmt: skip
"""Params that only shape training: with ``generators_run`` they come from that run."""


def resolved(p: Any) -> dict[str, Any]:
    """The schedule and loss weights that ``auto`` stands for (logged as the run's params)."""
    schedule = dgn.schedule_for(p.dataset, p.loss)
    weights = dgn.LOSSES[p.loss].resolve({w: getattr(p, w) for w in WEIGHTS})
    return weights | {
        "dgn_epochs": p.dgn_epochs or schedule.epochs,
        "dgn_lr": p.dgn_lr or schedule.lr,
        "dgn_batch_size": p.dgn_batch_size or schedule.batch_size,
    }


def generators_run(run_id: str, model_run: str) -> tuple[str, dict[str, str]]:
    """Check that ``run_id`` is a DGN attack run on ``model_run``; return its id and the
    training params it used (which the reusing run logs instead of its own)."""
    run = tracking.get_run(run_id, stage="attack")
    params = tracking.params_of(run)
    if params.get("method") != "dgn" or params.get("model_run") != model_run:
        raise ConfigError(
            f"generators_run must be a method=dgn attack run on model_run {model_run}, but run "
            f"{run_id} has method={params.get('method')} and model_run={params.get('model_run')}"
        )
    return run.info.run_id, {k: params[k] for k in TRAINING if k in params}


def tuned(run_id: str, loss: str) -> tuple[str, dict[str, Any]]:
    """Check that ``run_id`` is a tune run of ``loss``; return its id and the settings its
    ``tuned/weights.json`` holds (the loss weights, and ``k`` / ``dgn_lr`` when tuned)."""
    import json

    run = tracking.get_run(run_id, stage="tune")
    with open(tracking.download_artifacts(run_id, "tuned/weights.json")) as f:
        tuned_ = json.load(f)
    if tuned_["loss"] != loss:
        raise ConfigError(
            f"tuned_run {run_id} tuned the {tuned_['loss']} loss, but loss={loss}; pass "
            f"loss={tuned_['loss']} or another tuned_run"
        )
    extra = {k: tuned_[k] for k in ("k", "dgn_lr") if tuned_.get(k) is not None}
    return run.info.run_id, tuned_["weights"] | extra


def generators(run: Any, p: Any, params: dict[str, Any], model, ds: data.Dataset):
    """Load ``p.generators_run``'s generators, or train new ones and log them as artifacts."""
    device = next(model.parameters()).device
    if p.generators_run is not None:
        with run.phase("load_generators"):
            path = tracking.download_artifacts(p.generators_run, "generators")
            return dgn.load(path, device)
    split = getattr(ds, p.dgn_split)
    with run.phase("train"):
        gens = dgn.train(
            model,
            split.x,
            split.y,
            p.loss,
            eps=params["eps"],
            epochs=params["dgn_epochs"],
            lr=params["dgn_lr"],
            batch_size=params["dgn_batch_size"],
            architecture=p.architecture,
            classes=range(ds.num_classes),
            k=p.k,
            measure=p.measure,
            star=p.star,
            spectrum_inputs=p.spectrum_inputs,
            seed=p.seed,
            on_epoch=lambda c, epoch, loss: run.log_metrics({f"dgn/class{c}_loss": loss}, epoch),
            progress=not p.quiet,
            **{w: params[w] for w in WEIGHTS if w in params},
        )
    dgn.save(gens, run.outdir / "generators")
    run.log_artifacts(run.outdir / "generators", "generators")
    return gens


def generate(gens: dgn.Generators, model, x, y, p: Any) -> attacks.AdversarialSet:
    """Generate for (x, y); with ``misclassified_only`` keep those whose prediction changed."""
    x_adv = gens.generate(x, y, model=model, route=p.route, batch_size=p.batch_size or 1024)
    index = torch.arange(len(x))
    if p.misclassified_only:
        changed = predict(model, x_adv).argmax(1).cpu() != predict(model, x).argmax(1).cpu()
        x_adv, index = x_adv[changed], index[changed]
    attack = torch.zeros(len(index), dtype=torch.int64)
    name = f"dgn_{gens.spec.get('loss', p.loss)}"
    return attacks.AdversarialSet(x_adv, y[index], index, attack, (name,))
