"""The stage run: one tracked MLflow run per pipeline stage, owning every shared chore.

``with stage("train", params, dataset="digits") as run:`` opens (or reuses) the run and
records, so no pipeline repeats it: params and tags (``robust.stage``, ``robust.dataset``,
``robust.upstream.<name>``, code version), wall time, process CPU % and peak RSS, GPU
utilisation and memory, codecarbon energy and CO2 per phase and in total, MLflow's system
metrics, buffered per-step metrics sent with ``log_batch``, and failure (status FAILED plus a
``robust.error`` tag). A stage that reads a dataset names it (``data=(name, data_dir)``): a
fingerprint of the files (``data_fingerprint``) joins the reuse key, so changed, emptied or
corrupted files mean recompute, and the directory read is logged (``data_path``, outside the
key). A run launched by ``mlflow run`` (``MLFLOW_RUN_ID``) is adopted; inside another active
run the stage becomes its child.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from robust import engine
from robust.errors import Terminated
from robust.tracking import (
    cache,
    checksums,
    child,
    datasets,
    heartbeat,
    labels,
    notes,
    registry,
    store,
)
from robust.tracking.energy import EnergyMeter
from robust.tracking.lineage import MODEL_ARTIFACT, fetch
from robust.tracking.resources import ResourceMonitor, Usage

log = logging.getLogger("robust")
SYSTEM_METRICS_INTERVAL_S = 2
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


class StageRun:
    """Handle a pipeline uses inside ``with stage(...) as run``.

    Attributes:
        run_id: the MLflow run id (for a reused stage, the run that is reused).
        reused: True when an identical FINISHED run was found; the pipeline then returns.
        outdir: a private temporary directory for files to be logged as artifacts.
        phases: each finished phase's ``time_s``, ``energy_kwh`` and ``emissions_kg`` (what
            it logged), for pipelines that report them.
    """

    def __init__(
        self,
        run_id: str,
        *,
        reused: bool = False,
        quiet: bool = False,
        monitor: ResourceMonitor | None = None,
        energy: EnergyMeter | None = None,
    ):
        self.run_id = run_id
        self.reused = reused
        self.quiet = quiet
        self._monitor = monitor
        self._energy = energy
        self._pending: list = []
        self._phase: str | None = None
        self.phases: dict[str, dict[str, float]] = {}
        self._client = store.client()
        self._checksums: dict[str, str] = {}
        self.outdir = Path(tempfile.mkdtemp(prefix="robust-"))
        self.data_source: tuple[str, str] | None = None  # (fingerprint, path) with data=

    # ---- metrics -------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer metrics (sent at the end of each phase and of the stage)."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        for key, value in metrics.items():
            self._pending.append(Metric(key, float(value), ts, int(step or 0)))

    def flush(self) -> None:
        """Send buffered metrics with ``log_batch`` (one call per 1,000 metrics)."""
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), _BATCH):
            self._client.log_batch(self.run_id, metrics=pending[i : i + _BATCH], synchronous=True)

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Buffer one epoch of a fit's history, ``train_loss`` → ``train/loss`` (step = epoch);
        fits an ``on_epoch`` callback of :func:`robust.training.fit`."""
        self.log_metrics({k.replace("_", "/", 1): v for k, v in metrics.items()}, step=epoch)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log extra parameters (canonical strings)."""
        from mlflow.entities import Param

        items = [Param(k, cache.canonical(v)) for k, v in params.items()]
        self._client.log_batch(self.run_id, params=items, synchronous=True)

    def log_start(self, params: Mapping[str, Any], tags: Mapping[str, Any]) -> None:
        """Params (canonical strings) and tags in one request where MLflow's batch limits
        allow (100 of each), else in two."""
        from mlflow.entities import Param, RunTag

        if len(params) > 100 or len(tags) > 100:
            self.set_tags(tags)
            self.log_params(params)
            return
        self._client.log_batch(
            self.run_id,
            params=[Param(k, cache.canonical(v)) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
            synchronous=True,
        )

    def log_splits(self, ds, splits: Iterable[str], model_run: str) -> None:
        """Log the clean ``splits`` of ``ds`` this run used as MLflow dataset inputs
        (:mod:`robust.tracking.datasets`): their digest follows the files' fingerprint and
        ``model_run``'s train run's split parameters, so the same inputs have one digest in
        every stage."""
        from robust.tracking.lineage import DATA_PARAMS, Lineage

        if self.data_source is None:
            raise RuntimeError("log_splits needs the stage opened with data=(name, data_dir)")
        fingerprint, path = self.data_source
        if model_run == self.run_id:  # a train run: its own params (it is still RUNNING)
            params = self._client.get_run(self.run_id).data.params
            prep = {k: params.get(k, "auto") for k in DATA_PARAMS}
        else:
            prep = Lineage().data_params(model_run)
        inputs = [datasets.split_input(ds, s, fingerprint, path, prep) for s in splits]
        self._client.log_inputs(self.run_id, datasets=inputs)

    def log_adversarial_inputs(self, attack_run: str, sizes: Mapping[str, int], ds) -> None:
        """Log attack run ``attack_run``'s adversarial sets (split → number of inputs; made by
        this run, or read from it) as MLflow dataset inputs with context ``adversarial``."""
        name = fetch(attack_run, follow=False).info.run_name or attack_run
        inputs = [
            datasets.adversarial_input(attack_run, name, s, n, ds.input_shape, ds.num_classes)
            for s, n in sizes.items()
        ]
        self._client.log_inputs(self.run_id, datasets=inputs)

    def describe(self, *parts: str) -> None:
        """Set the run's description (Markdown, ``mlflow.note.content``): ``parts`` joined
        by blank lines; empty parts are left out."""
        self.set_tags({notes.NOTE_TAG: "\n\n".join(p.strip() for p in parts if p.strip())})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items()]
        self._client.log_batch(self.run_id, tags=items, synchronous=True)

    # ---- phases --------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase: logs ``time/<name>_s``, ``energy/<name>_kwh`` and process usage."""
        if self._phase is not None:
            raise RuntimeError(
                f"phase {name!r} opened inside phase {self._phase!r}; phases do not nest"
            )
        self._phase = name
        self._monitor.begin(name)
        self._energy.begin(name)
        try:
            yield
        finally:
            energy = self._energy.end()
            usage = self._monitor.end(name)
            self._phase = None
            self.phases[name] = {
                "time_s": usage.wall_s,
                "energy_kwh": energy.kwh,
                "emissions_kg": energy.kg_co2,
            }
            self.log_metrics(_usage_metrics(usage, name))
            self.log_metrics(
                {f"energy/{name}_kwh": energy.kwh, f"emissions/{name}_kg": energy.kg_co2}
            )
            self.flush()

    # ---- artifacts -----------------------------------------------------------------------
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload one file (its sha256 goes into the run's checksums)."""
        path = Path(path)
        self._checksums[_join(artifact_path, path.name)] = checksums.sha256(path)
        self._client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Upload a directory's files (their sha256 go into the run's checksums)."""
        directory = Path(directory)
        for f in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = f.relative_to(directory).as_posix()
            self._checksums[_join(artifact_path, rel)] = checksums.sha256(f)
        self._client.log_artifacts(self.run_id, str(directory), artifact_path)

    def log_checksums(self) -> None:
        """Upload ``robust/checksums.json`` (artifact path → sha256 of everything uploaded) and
        tag the run, so readers (:class:`robust.tracking.Lineage`) can verify what they read."""
        if not self._checksums:
            return
        path = self._stage_file(checksums.ARTIFACT)
        path.write_text(json.dumps(self._checksums, indent=1, sort_keys=True))
        self._client.log_artifact(self.run_id, str(path), _parent(checksums.ARTIFACT))
        self.set_tags({checksums.TAG: checksums.ARTIFACT})

    def log_figure(self, figure, artifact_file: str) -> None:
        """Save a matplotlib figure as an artifact (PNG by extension) and close it."""
        import matplotlib.pyplot as plt

        path = self._stage_file(artifact_file)
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        self.log_artifact(path, str(Path(artifact_file).parent) or None)

    def log_text(self, text: str, artifact_file: str) -> None:
        path = self._stage_file(artifact_file)
        path.write_text(text)
        self.log_artifact(path, _parent(artifact_file))

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=2, sort_keys=True), artifact_file)

    def log_tensors(self, artifact_path: str, **tensors) -> None:
        """Save named tensors as ``<artifact_path>.safetensors`` (loaded back without pickle)."""
        import torch
        from safetensors.torch import save_file

        path = self._stage_file(artifact_path + ".safetensors")
        save_file({k: torch.as_tensor(v).contiguous().cpu() for k, v in tensors.items()}, path)
        self.log_artifact(path, _parent(artifact_path))

    def log_model(self, model, dataset, name: str) -> None:
        """Log ``model/`` (safetensors + spec, what robust loads) and an MLflow PyTorch model
        named ``name`` (made a valid logged-model name: :func:`labels.slug`),
        recorded in the run's ``robust.mlflow_model`` tag so it can be registered.

        ``dataset`` (a :class:`robust.data.Dataset`) gives the model's dataset name, its class
        names and an input example (four test inputs). The MLflow model (torch.export "pt2"
        format, no pickle; ``runs:/<run_id>/<name>``) exists so ``mlflow models predict`` /
        ``serve``, the model registry and the MLflow UI work; robust itself loads ``model/``.
        """
        from robust.models import save

        directory = self.outdir / "model"
        save(model, directory, dataset=dataset.name, classes=dataset.classes)
        self.log_artifacts(directory, MODEL_ARTIFACT)
        self.log_mlflow_model(model, dataset, name)

    def log_mlflow_model(self, model, dataset, name: str) -> str:
        """Log only the MLflow model of :meth:`log_model` (and its tag); return its name."""
        import mlflow
        import numpy as np
        import torch

        name = labels.slug(name)
        example = np.asarray(dataset.test.x[:4].numpy(), dtype=np.float32)
        cpu_model = copy.deepcopy(model).cpu().eval()  # never move the caller's model
        with _quiet_loggers("mlflow", "torch"):
            # explicit requirements: MLflow's inference re-imports the model in a
            # subprocess and took 8 s of a 10 s save phase
            mlflow.pytorch.log_model(
                cpu_model,
                name=name,
                input_example=example,
                serialization_format="pt2",
                pip_requirements=[
                    f"torch=={torch.__version__.split('+')[0]}",
                    f"mlflow=={mlflow.__version__}",
                ],
            )
        self.set_tags({registry.MODEL_TAG: name})
        return name

    def _stage_file(self, artifact_file: str) -> Path:
        path = self.outdir / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _close(self) -> None:
        shutil.rmtree(self.outdir, ignore_errors=True)


def _join(artifact_path: str | None, name: str) -> str:
    return f"{artifact_path.strip('/')}/{name}" if artifact_path else name


def _parent(artifact_file: str) -> str | None:
    parent = str(Path(artifact_file).parent)
    return None if parent == "." else parent


def _usage_metrics(usage: Usage, name: str) -> dict[str, float]:
    m = {
        f"time/{name}_s": usage.wall_s,
        f"process/{name}_cpu_percent": usage.cpu_percent,
        f"process/{name}_peak_rss_mb": usage.peak_rss_mb,
    }
    if usage.gpu_utilization_percent is not None:
        m[f"gpu/{name}_utilization_percent"] = usage.gpu_utilization_percent
        m[f"gpu/{name}_peak_memory_mb"] = usage.gpu_peak_memory_mb
    return m


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _experiment_id() -> str:
    from mlflow.tracking.fluent import _get_experiment_id

    return _get_experiment_id()


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""The experiment tag that makes the MLflow UI open in its model-training view (not GenAI)."""


def experiment_name(dataset: str | None, experiment: str | None = None) -> str | None:
    """The experiment a stage goes to when nothing else places it: ``experiment``, else
    ``robust-<dataset>`` (None without a dataset: MLflow's default)."""
    return experiment or (f"robust-{dataset}" if dataset else None)


def _place(client: Any, dataset: str | None, experiment: str | None) -> str:
    """The id of the experiment a new top-level stage run goes to, created when missing.

    ``mlflow run --experiment-name/--experiment-id`` (which set ``MLFLOW_EXPERIMENT_NAME`` /
    ``_ID``) win over ``experiment``; then ``experiment``, then ``robust-<dataset>``."""
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):  # read here: MLflow's fluent API may hold an
        return os.environ["MLFLOW_EXPERIMENT_ID"]  # active experiment set by earlier code
    wanted = os.environ.get("MLFLOW_EXPERIMENT_NAME") or experiment_name(dataset, experiment)
    if wanted is None:
        return _experiment_id()
    found = client.get_experiment_by_name(wanted)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(wanted, tags=EXPERIMENT_KIND)
    except Exception:  # created meanwhile by another stage (RESOURCE_ALREADY_EXISTS)
        found = client.get_experiment_by_name(wanted)
        if found is None:
            raise
        return found.experiment_id


def _mark_kind(client: Any, experiment_id: str) -> str:
    """Tag the experiment as model training, unless it already says what it is; return its
    name."""
    experiment = client.get_experiment(experiment_id)
    if "mlflow.experimentKind" not in experiment.tags:
        with contextlib.suppress(Exception):  # a read-only experiment: the UI view only
            client.set_experiment_tag(experiment_id, *next(iter(EXPERIMENT_KIND.items())))
    return experiment.name


@contextlib.contextmanager
def stage(
    name: str,
    params: Mapping[str, Any],
    *,
    dataset: str | None = None,
    upstream: Mapping[str, str] | None = None,
    force: bool = False,
    quiet: bool = False,
    data: tuple[str, str | None] | None = None,
    run_name: str | None = None,
    experiment: str | None = None,
) -> Iterator[StageRun]:
    """Open the tracked run of stage ``name`` (or find an identical FINISHED one to reuse).

    A top-level run goes to the experiment ``experiment`` (default ``robust-<dataset>``,
    created and tagged as model training when missing), unless ``mlflow run`` placed it; a
    child goes to its parent's experiment.

    Args:
        name: the stage (entry point) name, tagged ``robust.stage``.
        params: the stage's parameters; logged, and part of the reuse key.
        dataset: tagged ``robust.dataset``.
        upstream: run ids this stage consumes, tagged ``robust.upstream.<name>``.
        force: recompute even if an identical FINISHED run exists.
        quiet: pipelines turn progress bars off.
        data: the dataset the stage reads and its directory (None: ``$ROBUST_DATA``, else
            ``./data``); its files' fingerprint joins the params and the reuse key.
        run_name: what the run is called in the UI (default ``<name>-<dataset>``); a reuse
            pointer is called ``<run_name> (reused)``.
        experiment: the experiment's name (default ``robust-<dataset>``).

    Yields:
        A ``StageRun``; when ``run.reused`` is True the pipeline should return at once.
    """
    energy = EnergyMeter().start()  # its hardware probe overlaps the store's start-up
    try:
        import mlflow

        store.configure()
        read_from = None
        if data is not None:
            params, read_from = _with_data(params, *data)
        upstream = dict(upstream or {})
        key = cache.cache_key(name, params, upstream)
        client = store.client()
        adopting = _adopted_run_id()
        active = mlflow.active_run()
        parent = child.current() if not active else None
        if adopting:
            exp = client.get_run(adopting).info.experiment_id
        elif active is not None:  # a child of the run in progress, in its experiment
            exp = active.info.experiment_id
        else:
            exp = parent.experiment_id if parent else _place(client, dataset, experiment)
        experiment_name = _mark_kind(client, exp)
        run_name = run_name or f"{name}-{dataset or ''}"
        heartbeat.sweep(client, [exp])  # runs whose process died are FAILED, not RUNNING
        reuse = None
        shown = _as_used(params, experiment_name)
        if not force:
            reuse = cache.find_reusable(client, exp, name, key, shown, upstream)
        if reuse is None:
            mlrun = _start_run(mlflow, exp, run_name, adopting, parent)
    except BaseException:
        with contextlib.suppress(Exception):
            energy.stop()
        raise

    if reuse is not None:
        energy.stop()
        log.info(
            "reusing FINISHED %s run %s (same parameters, upstream runs and code); "
            "pass force=true to recompute",
            name,
            reuse,
        )
        if adopting:  # mlflow run already made a run: make it a pointer to the reused one
            mlflow.set_experiment(experiment_id=exp)  # MLflow refuses another active one
            mlflow.start_run(experiment_id=exp)
            mlflow.set_tags(
                {
                    "robust.stage": name,
                    "robust.dataset": dataset or "",
                    store.REUSED_FROM_TAG: reuse,
                    "mlflow.runName": f"{run_name} (reused)",
                    notes.NOTE_TAG: notes.reused(reuse),
                }
            )
            if used := fetch(reuse, follow=False).inputs.dataset_inputs:  # its datasets too
                client.log_inputs(mlflow.active_run().info.run_id, datasets=used)
            mlflow.end_run("FINISHED")
        run = StageRun(reuse, reused=True, quiet=quiet)
        try:
            yield run
        finally:
            run._close()
        return

    run_id = mlrun.info.run_id
    monitor = ResourceMonitor().start()
    monitor.begin("__total__")
    run = StageRun(run_id, quiet=quiet, monitor=monitor, energy=energy)
    if read_from is not None:
        run.data_source = (params["data_fingerprint"], read_from)
    status = "FAILED"
    beat = heartbeat.Heartbeat(client, run_id)
    try:
        tags = (
            _stage_tags(name, dataset, key, upstream)
            | {
                "robust.energy.method": energy.method,
                "robust.energy.estimate": str(energy.is_estimate).lower(),
            }
            | beat.tags()
        )
        # a run robust just created holds no params yet: no need to ask (one request saved)
        logged = _new_params(client, run_id, shown) if adopting else shown
        run.log_start(logged | ({"data_path": read_from} if read_from else {}), tags)
        beat.start(beat_now=False)
        log.info("%s run %s started (tracking store %s)", name, run_id, store.tracking_uri())
        yield run
        run.log_checksums()
        status = "FINISHED"
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (robust.errors.Terminated)
        status = "KILLED"
        why = "terminated" if isinstance(exc, Terminated) else "interrupted"
        run.set_tags({"robust.error": why})
        raise
    except BaseException as exc:
        run.set_tags({"robust.error": one_line(exc)})
        raise
    finally:
        beat.stop()
        total = energy.stop()
        usage = monitor.end("__total__")
        monitor.stop()
        metrics = {
            k.replace("__total___", "total_"): v
            for k, v in _usage_metrics(usage, "__total__").items()
        }
        run.log_metrics(
            metrics | {"energy/total_kwh": total.kwh, "emissions/total_kg": total.kg_co2}
        )
        run.flush()
        run._close()
        with _quiet_loggers("mlflow.system_metrics"):
            mlflow.end_run(status)
        log.info("%s run %s %s in %.1f s", name, run_id, status, usage.wall_s)


def _with_data(
    params: Mapping[str, Any], name: str, data_dir: str | None
) -> tuple[dict[str, Any], str]:
    """``params`` plus the fingerprint of the files of dataset ``name``, and the directory
    they are read from (``bundled`` for digits). The directory's path is logged but is not
    part of the key: a copy of the same files reuses."""
    from robust import data

    fingerprint = data.fingerprint(name, data_dir)
    root = "bundled" if name == "digits" else str(data.resolve_root(data_dir) / name)
    return {**params, "data_fingerprint": fingerprint}, root


def _start_run(
    mlflow, experiment_id: str, run_name: str, adopting: str | None, parent: child.Child | None
):
    """Start (or adopt) the MLflow run of a stage that is not reused, in ``experiment_id``,
    called ``run_name``; return it. Under :func:`~robust.tracking.child.child_of` it is the
    study task's run in its parent's experiment."""
    mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_S)
    placed: dict[str, Any] = {"experiment_id": experiment_id}  # an adopted run's own
    if adopting:  # MLflow refuses to adopt a run of another experiment than the active one
        mlflow.set_experiment(experiment_id=experiment_id)
    else:
        placed["run_name"] = run_name
        if parent is not None:
            placed["tags"] = parent.tags()
    with _quiet_loggers("mlflow.system_metrics"):
        run = mlflow.start_run(
            nested=mlflow.active_run() is not None, log_system_metrics=True, **placed
        )
    if adopting:  # mlflow run named it at random: say what it is
        mlflow.set_tag("mlflow.runName", run_name)
    return run


def _stage_tags(
    name: str, dataset: str | None, key: str, upstream: Mapping[str, str]
) -> dict[str, str]:
    tags = {
        "robust.stage": name,
        "robust.dataset": dataset or "",
        cache.CODE_TAG: cache.code_version(),
        cache.KEY_TAG: key,
        "robust.host": socket.gethostname(),  # where it ran: a Ray study's stages spread out
        "robust.pid": str(os.getpid()),
    }
    if node := engine.node_id():
        tags["robust.ray_node"] = node
    tags.update({f"robust.upstream.{k}": v for k, v in upstream.items()})
    if commit := cache.git_commit():
        tags["robust.git_commit"] = commit
    return tags


def _as_used(params: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """The params as the run logs them: ``auto`` resolved where the value is only the
    machine's (``device``: ``cpu`` or ``cuda``; ``experiment``: its name), ``data_dir`` left
    out when auto (``data_path`` is the directory read). The reuse key keeps them as given, so
    ``device=auto`` reuses a run of any machine."""
    out = dict(params)
    if out.get("device", "") in (None, "auto"):
        from robust.utils import resolve_device

        out["device"] = str(resolve_device("auto"))
    if "experiment" in out and out["experiment"] in (None, "auto"):
        out["experiment"] = experiment
    if "data_dir" in out and out["data_dir"] in (None, "auto"):
        del out["data_dir"]
    return out


def _new_params(client, run_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params to log. Under ``mlflow run`` MLflow has already logged them as given
    (``epochs=auto``) and forbids changing a value, so a resolved value that differs is logged
    as ``resolved.<key>`` (``resolved.epochs=30``)."""
    logged = client.get_run(run_id).data.params
    out = {}
    for key, value in params.items():
        if key not in logged:
            out[key] = value
        elif logged[key] != cache.canonical(value):
            out[f"resolved.{key}"] = value
    return out


def _adopted_run_id() -> str | None:
    """The run ``mlflow run`` created for this process, if any (before fluent consumes it)."""
    return os.environ.get("MLFLOW_RUN_ID") or None


def one_line(exc: BaseException) -> str:
    """An exception as one line: the message of robust's errors, ``Type: message`` otherwise."""
    from robust.errors import RobustError

    text = str(exc) if isinstance(exc, RobustError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:5000]


def fail_adopted_run(message: str, status: str = "FAILED") -> None:
    """Mark the run ``mlflow run`` created FAILED (or KILLED) with ``robust.error``, for a stage
    that failed before or while it ran. A store that cannot be reached is left as it is: the
    caller has already said what went wrong."""
    run_id = _adopted_run_id()
    if not run_id:
        return
    try:
        c = store.client()
        if c.get_run(run_id).info.status not in ("RUNNING", "SCHEDULED"):
            return  # the stage ended it already, with its own status and message
        c.set_tag(run_id, "robust.error", message)
        c.set_terminated(run_id, status)
    except Exception as exc:
        log.warning("could not mark run %s %s: %s", run_id, status, one_line(exc))


def close() -> None:
    """End any MLflow run still active in this process (before a pipeline's process exits
    without interpreter teardown); a no-op when mlflow was never imported."""
    import sys

    if "mlflow" not in sys.modules:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
