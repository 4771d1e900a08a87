"""Checksums of a stage run's artifacts: written with the run, verified by every reader.

A FINISHED stage run uploads ``robust/checksums.json`` (artifact path → sha256 of each file it
uploaded) and is tagged ``robust.checksums``. :class:`robust.tracking.Lineage` verifies every
file it downloads from such a run, so a deleted, truncated or replaced artifact is a one-line
error naming the run and the artifact, never a half-read input. Runs logged before this existed
have no tag and are read unverified.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ARTIFACT = "robust/checksums.json"
TAG = "robust.checksums"
_CHUNK = 1 << 20


def sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def mismatches(local: Path, artifact_path: str, expected: dict[str, str]) -> list[str]:
    """The artifact paths under ``artifact_path`` (a file or a directory downloaded to
    ``local``) whose content differs from ``expected`` or that are missing; [] when all match.
    Files the run never checksummed are not judged."""
    prefix = artifact_path.strip("/")
    wanted = {k: v for k, v in expected.items() if k == prefix or k.startswith(prefix + "/")}
    bad = []
    for key, digest in sorted(wanted.items()):
        path = local if key == prefix else local / key[len(prefix) + 1 :]
        if not path.is_file() or sha256(path) != digest:
            bad.append(key)
    return bad
