"""Lineage: the upstream runs a stage consumes, each fetched once per process, and what stages
ask of them (the model, the dataset as it was loaded, adversarial sets, scores, params).

On a remote tracking server every look-up is a network round trip; a static ``advtrain`` used to
fetch its attack run about 8 times and its model run 5. Here a run that has ended (FINISHED,
FAILED or KILLED: it can no longer change) is fetched once per process and tracking URI, a
reuse pointer (``robust.reused_from``) is followed once, and an artifact is downloaded once.
``robust.results`` uses the same :func:`fetch`.

Usage in a pipeline::

    up = Lineage(p.dataset)
    model_run = up.model_run(p.model_run)     # checked: FINISHED, a model stage, same dataset
    ds = up.dataset_of(model_run, p.data_dir) # exactly as its train run loaded it
    model = up.model(model_run, device)
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robust.errors import ConfigError, DataError
from robust.tracking import checksums, heartbeat, store

if TYPE_CHECKING:
    from torch import Tensor

    from robust.data import Dataset

MODEL_STAGES = ("train", "advtrain")
"""Stages whose runs hold a model (``model/``) usable as ``model_run``."""
MODEL_ARTIFACT = "model"
"""Where a stage run logs its model (a :func:`robust.models.save` directory)."""
DATA_PARAMS = ("dataset", "seed", "size", "grayscale", "preset")
"""A train run's params that fix its dataset's split and inputs."""
SAME_INPUTS = ("size", "grayscale", "preset")
"""Train-run params every row of a matrix must share with the first (its inputs' shape)."""
log = logging.getLogger(__name__)
ENDED = ("FINISHED", "FAILED", "KILLED")
_RUNS: dict[tuple[str, str], Any] = {}
_FILES: dict[tuple[str, str, str], Path] = {}


def fetch(run_id: str, *, follow: bool = True):
    """The run ``run_id`` in any status (a reuse pointer followed to its target when
    ``follow``); an ended run is fetched from the store once per process, and a RUNNING run
    whose process died (stale heartbeat) is marked FAILED first.

    Raises:
        ConfigError: no such run in the store in force.
    """
    from mlflow.exceptions import MlflowException

    uri = store.tracking_uri()
    run = _RUNS.get((uri, run_id))
    if run is None:
        try:
            run = store.client().get_run(run_id)
        except MlflowException:
            raise ConfigError(
                f"no run with id {run_id!r} in the tracking store {uri}; pass the id of a "
                "FINISHED run (see `mlflow ui` or robust.results)"
            ) from None
        if heartbeat.is_lost(run):  # its process died: it will never end by itself
            run = heartbeat.mark_lost(store.client(), run)
        if run.info.status in ENDED:
            _RUNS[(uri, run_id)] = run
    target = run.data.tags.get(store.REUSED_FROM_TAG)
    return fetch(target) if follow and target else run


def remember(run) -> None:
    """Keep an ended run fetched by a search, so a later :func:`fetch` of it is free."""
    if run.info.status in ENDED:
        _RUNS[(store.tracking_uri(), run.info.run_id)] = run


def params_of(run) -> dict[str, str]:
    """A run's params as the stage used them: ``resolved.<key>`` (logged when ``mlflow run``
    had already logged the user's ``auto``) replaces ``<key>``."""
    raw = dict(run.data.params)
    resolved = {
        k.removeprefix("resolved."): v for k, v in raw.items() if k.startswith("resolved.")
    }
    return {k: v for k, v in raw.items() if not k.startswith("resolved.")} | resolved


def param(params: dict[str, str], key: str) -> str | None:
    """One param as the stage used it (``resolved.<key>`` first, in a raw params dict too);
    None when absent or ``auto``."""
    value = params.get(f"resolved.{key}", params.get(key))
    return None if value in (None, "auto") else value


def search(
    conditions: list[str],
    *,
    newest_first: bool = False,
    limit: int | None = None,
    keep: Callable[[Any], bool] | None = None,
):
    """Every run matching all ``conditions`` (MLflow filter clauses) and ``keep`` in any
    experiment, oldest first (or newest first), paged without a cap unless ``limit`` (which
    counts kept runs only: a newer run ``keep`` refuses never hides an older one)."""
    c = store.client()
    exps = [e.experiment_id for e in c.search_experiments()]
    order = ["attributes.start_time " + ("DESC" if newest_first else "ASC")]
    found, token = [], None
    while True:
        page = c.search_runs(
            exps,
            " and ".join(conditions),
            order_by=order,
            page_token=token,
            max_results=min(limit or 1000, 1000),
        )
        for run in page:
            if heartbeat.is_lost(run):
                run = heartbeat.mark_lost(c, run)
            remember(run)
            if keep is None or keep(run):
                found.append(run)
        token = page.token
        if not token or (limit is not None and len(found) >= limit):
            return found[:limit] if limit is not None else found


def quoted(value: str, name: str = "value") -> str:
    """``value`` for a filter string; a quote in it is a ConfigError (it would break out)."""
    if "'" in value or "`" in value:
        raise ConfigError(f"{name} must not contain quotes, but got {name}={value!r}")
    return value


class Lineage:
    """The upstream runs of one stage on ``dataset``, checked and fetched once.

    Every look-up takes a run id (a reuse pointer is followed) or, where it says so, None for
    "the newest FINISHED run of that stage on the dataset". Errors are one-line
    ``ConfigError``/``DataError`` messages that name the run.
    """

    def __init__(self, dataset: str | None = None):
        self.dataset = dataset

    # ---- runs ----------------------------------------------------------------------------
    def run(self, run_id: str, stage: str | tuple[str, ...] | None = None):
        """The FINISHED run ``run_id`` (pointer followed), of one of ``stage`` if given."""
        run = fetch(run_id)
        if run.info.status != "FINISHED":
            raise ConfigError(f"run {run_id} is {run.info.status}; only FINISHED runs can be used")
        actual = run.data.tags.get("robust.stage")
        accepted = (stage,) if isinstance(stage, str) else stage
        if accepted is not None and actual not in accepted:
            wanted = " or ".join(repr(s) for s in accepted)
            raise ConfigError(f"run {run_id} is a {actual!r} run, but a {wanted} run is required")
        return run

    def params(self, run_id: str) -> dict[str, str]:
        """The resolved params of the FINISHED run ``run_id``."""
        return params_of(self.run(run_id))

    def tag(self, run_id: str, key: str) -> str | None:
        return self.run(run_id).data.tags.get(key)

    def latest(self, stage: str) -> str:
        """The newest FINISHED ``stage`` run on this dataset.

        Raises:
            ConfigError: there is none, with the command that makes one.
        """
        found = self.find(stage, newest_first=True, limit=1)
        if not found:
            on = f" on dataset {self.dataset!r}" if self.dataset else ""
            raise ConfigError(
                f"no FINISHED {stage} run{on} in {store.tracking_uri()}; run `mlflow run . -e "
                f"{stage}" + (f" -P dataset={self.dataset}" if self.dataset else "")
                + " --env-manager local` first or pass its run id"
            )  # fmt: skip
        return found[0]

    def find(
        self,
        stage: str,
        *,
        tags: dict[str, str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[str]:
        """Ids of the FINISHED ``stage`` runs on this dataset carrying each of ``tags``, oldest
        first; reuse pointers are not listed (their targets are)."""
        conditions = [f"tags.`robust.stage` = '{stage}'", "attributes.status = 'FINISHED'"]
        if self.dataset:
            conditions.append(f"tags.`robust.dataset` = '{quoted(self.dataset, 'dataset')}'")
        conditions += [f"tags.`{k}` = '{quoted(v, k)}'" for k, v in (tags or {}).items()]
        runs = search(
            conditions, newest_first=newest_first, limit=limit,
            keep=lambda r: store.REUSED_FROM_TAG not in r.data.tags,
        )  # fmt: skip
        return [r.info.run_id for r in runs]

    def _checked(
        self, name: str, run_id: str | None, stages: str | tuple[str, ...], did: str
    ) -> str:
        """``run_id`` checked to be a FINISHED run of ``stages`` on this dataset (its target id
        if it is a pointer), or the newest FINISHED run of the first stage."""
        if run_id is None:
            return self.latest(stages if isinstance(stages, str) else stages[0])
        run = self.run(run_id, stages)
        actual = params_of(run).get("dataset")
        if self.dataset is not None and actual != self.dataset:
            raise ConfigError(
                f"{name} {run_id} {did} dataset {actual!r}, not {self.dataset!r}; "
                f"pass dataset={actual} or another {name}"
            )
        return run.info.run_id

    def model_run(self, run_id: str | None) -> str:
        """A train or advtrain run (checked), or the newest FINISHED train run."""
        return self._checked("model_run", run_id, MODEL_STAGES, "was trained on")

    def attack_run(self, run_id: str | None) -> str:
        """An attack run (checked), or the newest FINISHED one."""
        return self._checked("attack_run", run_id, "attack", "attacked a model on")

    def metric_run(self, run_id: str | None) -> str:
        """A metric run (checked), or the newest FINISHED one."""
        return self._checked("metric_run", run_id, "metric", "scored a pool on")

    def train_run_of(self, model_run: str) -> str:
        """The train run behind a model run: itself, or an advtrain run's ``model`` upstream."""
        run = self.run(model_run, MODEL_STAGES)
        while run.data.tags.get("robust.stage") != "train":
            run = self.run(run.data.tags["robust.upstream.model"], MODEL_STAGES)
        return run.info.run_id

    def source_model(self, attack_run: str) -> str:
        """The model run ``attack_run`` attacked (its ``robust.upstream.model``)."""
        run = self.run(attack_run, "attack")
        return run.data.tags.get("robust.upstream.model") or params_of(run)["model_run"]

    def behind_metric_run(self, metric_run: str) -> tuple[str, str]:
        """The attack run and model run a metric run scored, checked for retraining: the attack
        run must have an adversarial test set (retraining is evaluated on it)."""
        tags = self.run(metric_run, "metric").data.tags
        attack_run, model_run = tags["robust.upstream.attack"], tags["robust.upstream.model"]
        splits = self.splits(attack_run)
        if "test" not in splits:
            raise ConfigError(
                f"retrain evaluates on the adversarial test set of metric run {metric_run}'s "
                f"attack run {attack_run}, but it attacked splits={','.join(splits)} only; attack "
                "the test split too (-e attack -P splits=train,test), score that attack run "
                "(-e metric) and pass its metric_run"
            )
        return attack_run, model_run

    def data_params(self, model_run: str) -> dict[str, str]:
        """What fixes the split of a model run's dataset (its train run's params)."""
        params = self.params(self.train_run_of(model_run))
        return {k: params.get(k, "auto") for k in DATA_PARAMS}

    def require_method(self, attack_run: str, method: str, why: str) -> None:
        """Raise a ConfigError unless ``attack_run`` used ``method`` (``why``: who needs it)."""
        actual = self.params(attack_run).get("method")
        if actual != method:
            raise ConfigError(
                f"{why}, but attack_run {attack_run} has method={actual}; pass a {method} "
                "attack run"
            )

    def require_same_data(self, model_run: str, attack_run: str) -> None:
        """Raise a ConfigError unless ``model_run`` and ``attack_run``'s source model share
        their data (the same split, so adversarial inputs pair with it by index)."""
        ours = self.data_params(model_run)
        theirs = self.data_params(self.source_model(attack_run))
        if ours != theirs:
            diff = ", ".join(f"{k}={ours[k]} vs {theirs[k]}" for k in ours if ours[k] != theirs[k])
            raise ConfigError(
                f"model_run {model_run} and attack_run {attack_run} must use the same data "
                f"(the same split, so that the adversarial inputs pair with it), but {diff}"
            )

    # ---- the runs a matrix compares ------------------------------------------------------
    def matrix_rows(self, model_runs: tuple[str, ...] | None) -> list[str]:
        """Model runs to evaluate: the given ones (checked, deduplicated, all on the first one's
        inputs), or the newest train run and every FINISHED advtrain run of it, oldest first.

        Raises:
            ConfigError: a run that is not a model run on this dataset, or one whose inputs
                (size, grayscale, preset) differ from the first's.
        """
        if model_runs is None:
            original = self.model_run(None)
            return [original, *self.find("advtrain", tags={"robust.upstream.model": original})]
        runs = list(dict.fromkeys(self.model_run(r) for r in model_runs))
        first = self.params(self.train_run_of(runs[0]))
        for run_id in runs[1:]:
            theirs = self.params(self.train_run_of(run_id))
            for key in SAME_INPUTS:
                if theirs.get(key, "auto") != first.get(key, "auto"):
                    raise ConfigError(
                        f"model_runs must share the first one's inputs, but {run_id} was trained "
                        f"with {key}={theirs.get(key, 'auto')} and {runs[0]} with "
                        f"{key}={first.get(key, 'auto')}"
                    )
            if theirs.get("seed") != first.get("seed"):
                log.warning(
                    "model run %s was trained on the split of seed %s, not the original's %s: "
                    "its test accuracies include inputs it may have trained on",
                    run_id, theirs.get("seed"), first.get("seed"),
                )  # fmt: skip
        return runs

    def matrix_columns(self, attack_runs: tuple[str, ...] | None, original: str) -> list[str]:
        """Attack runs whose adversarial test sets are transferred: the given ones (checked,
        deduplicated), or every FINISHED one crafted on ``original``'s test split.

        Raises:
            ConfigError: a given run without an adversarial test set, or none found.
        """
        if attack_runs is not None:
            runs = list(dict.fromkeys(self.attack_run(r) for r in attack_runs))
            for run_id in runs:
                self.require_adversarial(run_id, "test")
            return runs
        found = self.find("attack", tags={"robust.upstream.model": original})
        runs = [r for r in found if "test" in self.splits(r)]
        if not runs:
            raise ConfigError(
                f"no FINISHED attack run on dataset {self.dataset!r} attacked the test split of "
                f"the original model {original}; run `mlflow run . -e attack -P "
                f"model_run={original} -P splits=train,test --env-manager local` first or pass "
                "attack_runs"
            )
        return runs

    # ---- artifacts -----------------------------------------------------------------------
    def artifact(self, run_id: str, path: str) -> Path:
        """Artifact ``path`` of the FINISHED run ``run_id``, downloaded once per process and
        verified against the checksums the run logged.

        Raises:
            DataError: the run has no such artifact, it cannot be read from the store, or it
                differs from what the run logged.
        """
        run = self.run(run_id)
        key = (store.tracking_uri(), run.info.run_id, path)
        if key not in _FILES or not _FILES[key].exists():
            local = _download(run, path)
            self._verify(run, path, local)
            _FILES[key] = local
        return _FILES[key]

    def _verify(self, run, path: str, local: Path) -> None:
        """Compare a download with the sha256 its run logged (runs that logged none: as is).

        Raises:
            DataError: a file is missing or differs, naming the run and the artifact.
        """
        if checksums.TAG not in run.data.tags:
            return
        key = (store.tracking_uri(), run.info.run_id, checksums.ARTIFACT)
        if key not in _FILES:
            _FILES[key] = _download(run, checksums.ARTIFACT)
        expected = json.loads(_FILES[key].read_text(encoding="utf-8"))
        if bad := checksums.mismatches(local, path, expected):
            raise DataError(
                f"artifact {bad[0]!r} of run {run.info.run_id} is missing or damaged (its sha256 "
                "differs from the one the run logged); rerun that stage (force=true) or pass "
                "another run"
            )

    def tensors(self, run_id: str, path: str) -> dict[str, Tensor]:
        """A ``.safetensors`` artifact as named tensors (loaded without pickle)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        local = self.artifact(run_id, path)
        try:
            return load_file(local)
        except (SafetensorError, OSError) as err:
            raise DataError(
                f"artifact {path!r} of run {run_id} must be a safetensors file, but reading it "
                f"failed: {err}"
            ) from None

    def json(self, run_id: str, path: str) -> Any:
        """A JSON artifact, parsed."""
        local = self.artifact(run_id, path)
        try:
            return json.loads(local.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"artifact {path!r} of run {run_id} must be JSON: {err}") from None

    # ---- what stages ask -----------------------------------------------------------------
    def data_source(self, model_run: str, data_dir: str | None = None) -> tuple[str, str | None]:
        """The dataset name and directory a later stage reads for ``model_run`` (what
        ``tracking.stage(data=...)`` fingerprints): ``data_dir``, else the train run's."""
        p = self.params(self.train_run_of(model_run))
        return p["dataset"], data_dir or param(p, "data_dir")

    def dataset_of(self, model_run: str, data_dir: str | None = None) -> Dataset:
        """The dataset exactly as the (underlying) train run loaded it (name, seed, size,
        grayscale, preset); ``data_dir`` overrides the directory it was read from."""
        from robust import data

        p = self.params(self.train_run_of(model_run))
        size = param(p, "size")
        return data.load(
            *self.data_source(model_run, data_dir),
            seed=int(p["seed"]),
            size=None if size is None else int(size),
            grayscale=p.get("grayscale") == "true",
            preset=param(p, "preset"),
        )

    def model(self, model_run: str, device: str = "cpu"):
        """The model run's model (``model/``: safetensors + spec, never unpickled)."""
        return self._model(model_run, MODEL_ARTIFACT, device)

    def _model(self, run_id: str, path: str, device: str):
        from robust import models

        local = self.artifact(run_id, path)
        try:
            return models.load(local, device=device)
        except DataError as err:  # name the run and artifact, not a temporary path
            message = str(err).replace(str(local), f"{path}/")
            raise DataError(f"the model of run {run_id} cannot be loaded: {message}") from None

    def retrain_run(self, run_id: str) -> str:
        """A FINISHED retrain run on this dataset (checked; its target id if a pointer)."""
        return self._checked("retrain_runs", run_id, "retrain", "retrained a model on")

    def best_models(self, retrain_run: str) -> list[str]:
        """The metrics whose best retrained model ``retrain_run`` saved (``best/<metric>/``),
        in its ``best/best.json`` order."""
        return list(self.json(retrain_run, "best/best.json"))

    def best_model(self, retrain_run: str, metric: str, device: str = "cpu"):
        """A retrain run's best model for ``metric`` (``best/<metric>/``, never unpickled)."""
        return self._model(retrain_run, f"best/{metric}", device)

    def model_and_data(self, model_run: str, data_dir: str | None, device: str = "cpu"):
        """The model run's dataset (as :meth:`dataset_of`) and its model on ``device``."""
        return self.dataset_of(model_run, data_dir), self.model(model_run, device)

    def splits(self, attack_run: str) -> list[str]:
        """The splits ``attack_run`` attacked (its resolved ``splits`` parameter)."""
        raw = self.params(attack_run).get("splits", "")
        return [s.strip() for s in raw.split(",") if s.strip()]

    def require_adversarial(self, attack_run: str, split: str) -> None:
        """Raise a ConfigError unless ``attack_run`` attacked ``split``."""
        splits = self.splits(attack_run)
        if split not in splits:
            wanted = ",".join(dict.fromkeys([split, *splits]))
            raise ConfigError(
                f"attack run {attack_run} has no adversarial {split} set (it attacked "
                f"splits={','.join(splits)}); attack the {split} split too (-P splits={wanted}) "
                "or pass another attack_run"
            )

    def adversarial(self, attack_run: str, split: str) -> dict[str, Tensor]:
        """``adversarial/<split>.safetensors`` of an attack run: x, y, index (into the split),
        attack (code)."""
        self.require_adversarial(attack_run, split)
        return self.tensors(attack_run, f"adversarial/{split}.safetensors")

    def generators(self, attack_run: str, device: str = "cpu"):
        """The DGN generators of a ``method=dgn`` attack run (safetensors + json)."""
        from robust.attacks import dgn

        return dgn.load(self.artifact(attack_run, "generators"), device)

    def dgn_training(self, attack_run: str, model_run: str) -> tuple[str, dict[str, str]]:
        """Check that ``attack_run`` is a DGN attack run on ``model_run`` (generators to reuse);
        return its id and the training settings it used (a reusing run logs those)."""
        from robust.attacks import dgn

        run = self.run(attack_run, "attack")
        params = params_of(run)
        if params.get("method") != "dgn" or params.get("model_run") != model_run:
            raise ConfigError(
                f"generators_run must be a method=dgn attack run on model_run {model_run}, but "
                f"run {attack_run} has method={params.get('method')} and "
                f"model_run={params.get('model_run')}"
            )
        return run.info.run_id, {k: params[k] for k in dgn.TRAINING if k in params}

    def tuned(self, tune_run: str, loss: str) -> tuple[str, dict[str, Any]]:
        """Check that ``tune_run`` tuned ``loss``; return its id and the settings its
        ``tuned/weights.json`` holds: the loss weights, ``k`` / ``dgn_lr`` when tuned, and the
        DGN schedule the trials were scored under (``dgn_epochs``, ``dgn_lr``,
        ``dgn_batch_size``), so that an attack filling what it was not given trains as the
        picked trial trained (older files without a schedule give the weights only)."""
        run_id = self.run(tune_run, "tune").info.run_id
        tuned = self.json(tune_run, "tuned/weights.json")
        if tuned["loss"] != loss:
            raise ConfigError(
                f"tuned_run {tune_run} tuned the {tuned['loss']} loss, but loss={loss}; pass "
                f"loss={tuned['loss']} or another tuned_run"
            )
        schedule = tuned.get("schedule") or {}
        scheduled = {
            k: schedule[k]
            for k in ("dgn_epochs", "dgn_lr", "dgn_batch_size")
            if schedule.get(k) is not None
        }
        extra = {k: tuned[k] for k in ("k", "dgn_lr") if tuned.get(k) is not None}
        return run_id, scheduled | tuned["weights"] | extra

    def guidance(self, metric_run: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """A metric run's pool description (source, index, y, pred) and orders per metric."""
        pool = self.tensors(metric_run, "guidance/pool.safetensors")
        return pool, self.tensors(metric_run, "guidance/order.safetensors")


def _download(run, path: str) -> Path:
    """Download artifact ``path`` of ``run`` into a new temporary directory.

    Raises:
        DataError: the run has no such artifact (or it cannot be read from the store).
    """
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        return Path(
            download_artifacts(
                artifact_uri=f"{run.info.artifact_uri.rstrip('/')}/{path}",
                dst_path=tempfile.mkdtemp(prefix="robust-artifact-"),
                tracking_uri=store.tracking_uri(),
            )
        )
    except (MlflowException, OSError) as err:
        raise DataError(
            f"run {run.info.run_id} has no readable artifact {path!r}: "
            f"{' '.join(str(err).split())[:300]}"
        ) from None


def forget() -> None:
    """Drop every run and artifact this process has fetched (they are fetched again on use)."""
    _RUNS.clear()
    _FILES.clear()
