"""Finding what an upstream run produced: its model, its dataset, its tensors (by run id)."""

from __future__ import annotations

from robust import data, models, tracking
from robust.errors import ConfigError


def model_run(run_id: str | None, dataset: str) -> str:
    """The train run to use: ``run_id`` (checked) or the newest FINISHED one on ``dataset``."""
    if run_id is None:
        return tracking.latest_run("train", dataset)
    run = tracking.get_run(run_id, stage="train")
    actual = run.data.params.get("dataset")
    if actual != dataset:
        raise ConfigError(
            f"model_run {run_id} was trained on dataset {actual!r}, not {dataset!r}; "
            f"pass dataset={actual} or another model_run"
        )
    return run.info.run_id


def dataset_of(train_run_id: str, data_dir: str | None = None) -> data.Dataset:
    """The dataset exactly as the train run loaded it (name, seed, size, grayscale, preset)."""
    p = tracking.get_run(train_run_id, stage="train").data.params

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


def model_of(train_run_id: str, device: str = "cpu"):
    """The train run's model, loaded from safetensors (never unpickled)."""
    return models.load(train_run_id, device=device)
