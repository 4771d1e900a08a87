"""A fingerprint of the files a dataset's loader reads, so that reuse notices when they change.

``fingerprint(name, root)`` digests what the loader may read in ``<root>/<name>/``: every entry
of ``expected_files(name)`` (one ending in ``/`` stands for every file below it, recursively),
plus the other names the loaders accept (uncompressed IDX files; intel's ``seg_train/`` and
``seg_test/`` without the doubled folder). It records whether each entry is a file, a folder or
missing, and for each file its path relative to ``<root>/<name>/``, its size and modification
time (ns), and, for files up to ``HASH_LIMIT`` bytes (1 MiB), the SHA-256 of its content. So a
small file rewritten with the same size and time still changes the fingerprint, while large
files are never read and a big dataset costs one ``stat`` per file. ``digits`` is bundled with
scikit-learn: its fingerprint covers scikit-learn's version and the SHA-256 of the bundled
``digits.csv.gz``.

Other files in the directory (robust's decode caches, notes) do not count, nor does the root's
path: a copy that keeps modification times (``cp -p``, ``rsync -t``) fingerprints the same.
Loading cifar10 from its archive extracts the batches into a folder that is covered too, so its
fingerprint changes once, after the first load.

Format: ``"sha256:"`` followed by the first 16 hex digits (64 bits) of a SHA-256 over a
versioned listing of the above, e.g. ``"sha256:3f9c0a7d5e2b8c41"``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

from robust.data import idx
from robust.data.registry import expected_files, resolve_root
from robust.errors import DataError

HASH_LIMIT = 1 << 20
FORMAT = "robust-data-fingerprint/1"
# Names the loaders accept besides the published ones that ``expected_files`` lists.
_ALSO_READ: dict[str, tuple[str, ...]] = {
    "mnist": idx.UNCOMPRESSED,
    "fashion": idx.UNCOMPRESSED,
    "intel": ("seg_train/", "seg_test/"),
}
_DIGITS = ("datasets", "data", "digits.csv.gz")  # below the sklearn package


def fingerprint(name: str, root: str | os.PathLike | None = None) -> str:
    """A short digest of the files ``load(name, root)`` reads; it changes when they change.

    Args:
        name: one of ``DATASETS``.
        root: the data directory, as for ``load``: None means ``ROBUST_DATA``, else ``./data``.

    Returns:
        ``"sha256:"`` and 16 lowercase hex digits (module docstring).

    Raises:
        ConfigError: ``name`` or ``root`` is invalid.
        DataError: a file that exists cannot be read.

    Example:
        >>> fingerprint("digits")  # doctest: +SKIP
        'sha256:3f9c0a7d5e2b8c41'
    """
    entries = expected_files(name)  # checks name
    base = resolve_root(root) / name  # checks root
    lines = [FORMAT, f"dataset\0{name}"]
    if name == "digits":
        sklearn = importlib.util.find_spec("sklearn")
        if sklearn is None or sklearn.origin is None:
            raise DataError("digits needs scikit-learn, which is not installed")
        package = Path(sklearn.origin).parent
        lines.append(f"scikit-learn\0{importlib.metadata.version('scikit-learn')}")
        lines.append(_file_line(package.joinpath(*_DIGITS), package))
    else:
        files: set[Path] = set()
        for entry in (*entries, *_ALSO_READ.get(name, ())):
            path = base / entry
            if entry.endswith("/") and path.is_dir():
                lines.append(f"entry\0{entry}\0folder")
                files.update(p for p in path.rglob("*") if p.is_file())
            elif not entry.endswith("/") and path.is_file():
                lines.append(f"entry\0{entry}\0file")
                files.add(path)
            else:
                lines.append(f"entry\0{entry}\0missing")
        lines += [_file_line(p, base) for p in sorted(files)]
    digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape"))
    return "sha256:" + digest.hexdigest()[:16]


def _file_line(path: Path, base: Path) -> str:
    """A listing line: relative path, size, mtime (ns), SHA-256 (``-`` if large), or missing."""
    rel = path.relative_to(base).as_posix()
    try:
        if not path.is_file():
            return f"{rel}\0missing"
        st = path.stat()
        content = "-"
        if st.st_size <= HASH_LIMIT:
            with path.open("rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise DataError(f"cannot read {path} to fingerprint it: {e}") from e
    return f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{content}"
