"""Finding what an upstream run produced: its model, its dataset, its tensors (by run id)."""

from __future__ import annotations

from torch import Tensor

from robust import data, models, tracking
from robust.errors import ConfigError

MODEL_STAGES = ("train", "advtrain")
"""Stages whose runs hold a model (``model/``) usable as ``model_run``."""


def _upstream_run(
    name: str, run_id: str | None, dataset: str, stages: str | tuple[str, ...], did: str
) -> str:
    """``run_id`` checked to be a FINISHED run of ``stages`` on ``dataset``, or the newest
    FINISHED run of the first stage there; ``did`` says what such a run did, for the error."""
    if run_id is None:
        return tracking.latest_run(stages if isinstance(stages, str) else stages[0], dataset)
    run = tracking.get_run(run_id, stage=stages)
    actual = tracking.params_of(run).get("dataset")
    if actual != dataset:
        raise ConfigError(
            f"{name} {run_id} {did} dataset {actual!r}, not {dataset!r}; "
            f"pass dataset={actual} or another {name}"
        )
    return run.info.run_id


def model_run(run_id: str | None, dataset: str) -> str:
    """The model run to use: ``run_id`` (a train or advtrain run, checked) or the newest
    FINISHED train run on ``dataset``."""
    return _upstream_run("model_run", run_id, dataset, MODEL_STAGES, "was trained on")


def train_run_of(model_run_id: str) -> str:
    """The train run behind a model run: itself, or an advtrain run's ``model`` upstream."""
    run = tracking.get_run(model_run_id, stage=MODEL_STAGES)
    while run.data.tags.get("robust.stage") != "train":
        run = tracking.get_run(run.data.tags["robust.upstream.model"], stage=MODEL_STAGES)
    return run.info.run_id


def dataset_of(model_run_id: str, data_dir: str | None = None) -> data.Dataset:
    """The dataset exactly as the (underlying) train run loaded it (name, seed, size,
    grayscale, preset); a model run of another stage is followed to its train run."""
    p = tracking.params_of(tracking.get_run(train_run_of(model_run_id), stage="train"))

    def opt(key: str) -> str | None:
        return None if p.get(key, "auto") == "auto" else p[key]

    size = opt("size")
    return data.load(
        p["dataset"],
        data_dir or opt("data_dir"),
        seed=int(p["seed"]),
        size=None if size is None else int(size),
        grayscale=p.get("grayscale") == "true",
        preset=opt("preset"),
    )


def model_of(model_run_id: str, device: str = "cpu"):
    """The model run's model (``model/``), loaded from safetensors (never unpickled)."""
    return models.load(model_run_id, device=device)


def attack_run(run_id: str | None, dataset: str) -> str:
    """The attack run to use: ``run_id`` (checked) or the newest FINISHED one on ``dataset``."""
    return _upstream_run("attack_run", run_id, dataset, "attack", "attacked a model on")


def model_of_attack(attack_run_id: str) -> str:
    """The train run whose model ``attack_run_id`` attacked (its ``robust.upstream.model``)."""
    run = tracking.get_run(attack_run_id, stage="attack")
    return run.data.tags.get("robust.upstream.model") or tracking.params_of(run)["model_run"]


def attacked_splits(attack_run_id: str) -> list[str]:
    """The splits ``attack_run_id`` attacked (its resolved ``splits`` parameter)."""
    params = tracking.params_of(tracking.get_run(attack_run_id, stage="attack"))
    raw = params.get("splits", "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def require_adversarial(attack_run_id: str, split: str) -> None:
    """Raise a ConfigError unless ``attack_run_id`` attacked ``split``."""
    splits = attacked_splits(attack_run_id)
    if split not in splits:
        wanted = ",".join(dict.fromkeys([split, *splits]))
        raise ConfigError(
            f"attack run {attack_run_id} has no adversarial {split} set (it attacked "
            f"splits={','.join(splits)}); attack the {split} split too (-P splits={wanted}) "
            "or pass another attack_run"
        )


def adversarial_set(attack_run_id: str, split: str) -> dict[str, Tensor]:
    """``adversarial/<split>.safetensors`` of an attack run: x, y, index (into the split),
    attack (code), loaded with safetensors (never unpickled)."""
    from safetensors.torch import load_file

    require_adversarial(attack_run_id, split)
    path = tracking.download_artifacts(attack_run_id, f"adversarial/{split}.safetensors")
    return load_file(path)


def metric_run(run_id: str | None, dataset: str) -> str:
    """The metric run to use: ``run_id`` (checked) or the newest FINISHED one on ``dataset``."""
    return _upstream_run("metric_run", run_id, dataset, "metric", "scored a pool on")
