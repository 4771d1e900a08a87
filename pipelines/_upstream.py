"""Finding what an upstream run produced: its model, its dataset, its tensors (by run id)."""

from __future__ import annotations

from torch import Tensor

from robust import data, models, tracking
from robust.errors import ConfigError

MODEL_STAGES = ("train", "advtrain")
"""Stages whose runs hold a model (``model/``) usable as ``model_run``."""


def model_run(run_id: str | None, dataset: str) -> str:
    """The model run to use: ``run_id`` (a train or advtrain run, checked) or the newest
    FINISHED train run on ``dataset``."""
    if run_id is None:
        return tracking.latest_run("train", dataset)
    run = tracking.get_run(run_id, stage=MODEL_STAGES)
    actual = tracking.params_of(run).get("dataset")
    if actual != dataset:
        raise ConfigError(
            f"model_run {run_id} was trained on dataset {actual!r}, not {dataset!r}; "
            f"pass dataset={actual} or another model_run"
        )
    return run.info.run_id


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
    if run_id is None:
        return tracking.latest_run("attack", dataset)
    run = tracking.get_run(run_id, stage="attack")
    actual = tracking.params_of(run).get("dataset")
    if actual != dataset:
        raise ConfigError(
            f"attack_run {run_id} attacked a model on dataset {actual!r}, not {dataset!r}; "
            f"pass dataset={actual} or another attack_run"
        )
    return run.info.run_id


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
    if run_id is None:
        return tracking.latest_run("metric", dataset)
    run = tracking.get_run(run_id, stage="metric")
    actual = tracking.params_of(run).get("dataset")
    if actual != dataset:
        raise ConfigError(
            f"metric_run {run_id} scored a pool on dataset {actual!r}, not {dataset!r}; "
            f"pass dataset={actual} or another metric_run"
        )
    return run.info.run_id
