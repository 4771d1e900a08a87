"""Reuse of finished stages: a stage whose key matches a FINISHED run is not recomputed.

The key hashes (stage, parameters in canonical form, upstream run ids, code version) — closing
the gaps of MLflow's multistep example, which compared raw strings (so typed parameters never
matched), ignored upstream changes and scanned every run. Here the key is a tag found by one
indexed search, and every near-match that was passed over is logged with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

KEY_TAG = "robust.cache_key"
CODE_TAG = "robust.code_version"
IGNORED_PARAMS = frozenset({"force", "quiet", "engine", "ray_address", "experiment", "register"})
log = logging.getLogger(__name__)


def canonical(value: Any) -> str:
    """One string per value: ``True`` → ``true``, ``1e-3`` and ``0.001`` → ``0.001``."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(canonical(v) for v in value)
    return str(value)


def canonical_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as canonical strings, without those that never change results."""
    return {k: canonical(v) for k, v in sorted(params.items()) if k not in IGNORED_PARAMS}


@cache
def code_version() -> str:
    """A hash of robust's and the pipelines' source, so any code change invalidates reuse."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for pkg in ("robust", "pipelines"):
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return "src-" + h.hexdigest()[:16]


@cache
def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` if modified), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("-dirty" if dirty else "")


def cache_key(stage: str, params: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """The reuse key of a stage: sha256 of its canonical description."""
    blob = json.dumps(
        {
            "stage": stage,
            "params": canonical_params(params),
            "upstream": dict(sorted(upstream.items())),
            "code": code_version(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


NEAR_MATCHES = 10
"""Newest runs of the stage compared with the key's parameters to log why they differ."""


def find_reusable(
    client,
    experiment_id: str,
    stage: str,
    key: str,
    params: Mapping[str, Any],
    upstream: Mapping[str, str],
) -> str | None:
    """The newest FINISHED run tagged with ``key`` in the experiment, however old.

    One search on the key's tag (indexed by the store), paged without a cap; only when it finds
    no FINISHED run are the newest few runs of the stage compared, to log why each near-match
    was rejected.
    """
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`{KEY_TAG}` = '{key}'",
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        for run in page:
            if run.info.status == "FINISHED":
                return run.info.run_id
            log.info(
                "not reusing %s: same inputs but its status is %s",
                run.info.run_id,
                run.info.status,
            )
        token = page.token
        if not token:
            break
    ours = canonical_params(params)
    recent = client.search_runs(
        [experiment_id],
        f"tags.`robust.stage` = '{stage}'",
        order_by=["attributes.start_time DESC"],
        max_results=NEAR_MATCHES,
    )
    for run in recent:
        if KEY_TAG not in run.data.tags:
            continue  # a pointer run (reuse) or a run that failed before it was keyed
        reasons = _differences(run, ours, upstream)
        if reasons and len(reasons) <= 3:
            log.info("not reusing %s: %s", run.info.run_id, "; ".join(reasons))
    return None


def _differences(run, ours: Mapping[str, str], upstream: Mapping[str, str]) -> list[str]:
    tags = run.data.tags
    theirs = {
        k.removeprefix("resolved."): v
        for k, v in sorted(  # resolved.* wins
            run.data.params.items(), key=lambda kv: kv[0].startswith("resolved.")
        )
    }
    reasons = []
    if tags.get(CODE_TAG) != code_version():
        reasons.append(f"code changed ({tags.get(CODE_TAG)} -> {code_version()})")
    for name, rid in upstream.items():
        if tags.get(f"robust.upstream.{name}") != rid:
            reasons.append(f"upstream {name} {tags.get(f'robust.upstream.{name}')} != {rid}")
    for k in sorted(ours):  # what the stage logged on its own (n_train, data_path) is no input
        if k in IGNORED_PARAMS or ours.get(k) == theirs.get(k):
            continue
        reasons.append(f"{k}={theirs.get(k)} (now {ours.get(k)})")
    return reasons
