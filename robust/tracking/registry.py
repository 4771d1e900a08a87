"""The model registry: a study's models as versions of one registered model, with aliases.

A stage that trains a model logs it as an MLflow model named for what it is (its run's name
made a model name by :func:`robust.tracking.labels.slug`, e.g. ``train-digits_cnn``,
``advtrain-fgsm-alpha-0_5``, ``retrain-c2-lsa``) and tags its run with that name
(:data:`MODEL_TAG`). :func:`register` makes the run's model a version of the registered model
named like the run's experiment (``robust-digits`` by default), once: registering the same run
again returns its version, so a reused stage is never registered twice. :func:`set_alias`
points an alias (``original``, ``most-robust``) at the version of a run, and
``models:/robust-digits@most-robust`` then loads, serves (``mlflow models serve``) and
predicts (``mlflow models predict``) with it.
"""

from __future__ import annotations

import logging

from robust.errors import ConfigError
from robust.tracking import store

log = logging.getLogger("robust")

MODEL_TAG = "robust.mlflow_model"
"""The run tag holding the name of the run's logged MLflow model."""


def registered_name(run_id: str) -> str:
    """The registered model a run's model joins: the name of the run's experiment."""
    client = store.client()
    return client.get_experiment(client.get_run(run_id).info.experiment_id).name


def register(run_id: str, name: str | None = None) -> str:
    """Register the MLflow model ``run_id`` logged as a version of ``name`` (auto: the run's
    experiment's name) and return the version; a run registered before keeps its version.

    The version is tagged with the run's stage and name (``robust.stage``, ``robust.run``)
    and described by the run's name.

    Raises:
        ConfigError: the run logged no MLflow model (no :data:`MODEL_TAG` tag).
    """
    import mlflow

    from robust.tracking.lineage import fetch

    client = store.client()
    run = fetch(run_id, follow=False)
    model = run.data.tags.get(MODEL_TAG)
    if model is None:
        raise ConfigError(
            f"run {run_id} ({run.info.run_name}) logged no MLflow model to register; train, "
            "advtrain and retrain runs do"
        )
    name = name or registered_name(run_id)
    existing = _version_of(name, run_id)
    if existing is not None:
        return existing
    version = mlflow.register_model(f"runs:/{run_id}/{model}", name).version
    client.update_model_version(name, version, description=run.info.run_name)
    for key, value in (
        ("robust.stage", run.data.tags.get("robust.stage", "")),
        ("robust.run", run.info.run_name),
    ):
        client.set_model_version_tag(name, version, key, value)
    log.info("registered %s (run %s) as %s version %s", model, run_id, name, version)
    return str(version)


def set_alias(name: str, alias: str, run_id: str) -> str:
    """Point ``alias`` of registered model ``name`` at the version of ``run_id`` (registered
    first when it is not yet); return the version."""
    version = _version_of(name, run_id) or register(run_id, name)
    store.client().set_registered_model_alias(name, alias, version)
    return version


def _version_of(name: str, run_id: str) -> str | None:
    """The newest version of ``name`` made from ``run_id``'s model, if any."""
    from mlflow.exceptions import MlflowException

    try:
        found = store.client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:  # no such registered model yet
        return None
    return str(max(int(v.version) for v in found)) if found else None
