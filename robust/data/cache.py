"""A ``.npz`` cache of decoded images, kept next to their source files.

Decoding tens of thousands of GTSRB or Intel images takes minutes, so their loaders store the
decoded uint8 arrays as ``<root>/<name>/cache-<size>-<gray|rgb>.npz``. The file records a
signature of the source files (names, sizes, modification times) and a format version; a cache
whose signature no longer matches, or that cannot be read, is ignored and rebuilt. Caches are
written atomically (temporary file + ``os.replace``) and read with ``allow_pickle=False``.

A cache is never decompressed: ``np.savez`` stores its members uncompressed, so every member must
be stored and no larger than the cache file itself, and each array's header must declare no more
bytes than its member holds. A file breaking that cap (corrupt, or a crafted decompression bomb)
is ignored with a warning naming the member and the cap, and rebuilt, like any unreadable cache.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

VERSION = 1
_KEY = "__signature__"
log = logging.getLogger(__name__)


def cache_path(directory: Path, size: int, gray: bool) -> Path:
    """The cache file for images decoded at ``size × size``, grayscale or RGB."""
    return directory / f"cache-{size}-{'gray' if gray else 'rgb'}.npz"


def signature(files: Iterable[Path], base: Path) -> str:
    """A digest of the files' paths relative to ``base``, sizes and modification times."""
    h = hashlib.sha256(f"v{VERSION}".encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read(path: Path, sig: str) -> dict[str, np.ndarray] | None:
    """The arrays cached at ``path``, or None when absent, stale or unreadable."""
    if not path.is_file():
        return None
    try:
        refusal = _refusal(path)
        if refusal is not None:
            log.warning("ignoring cache %s (%s); it will be rebuilt", path, refusal)
            return None
        with np.load(path, allow_pickle=False) as npz:
            if _KEY not in npz.files or str(npz[_KEY]) != sig:
                log.info("ignoring stale cache %s", path)
                return None
            return {k: npz[k] for k in npz.files if k != _KEY}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        log.warning("ignoring unreadable cache %s (%s); it will be rebuilt", path, e)
        return None


def _refusal(path: Path) -> str | None:
    """Why reading the npz at ``path`` could take more memory than the file's size, or None."""
    limit = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                return f"member {info.filename!r} is compressed; a cache never is"
            if info.file_size > limit:
                return (
                    f"member {info.filename!r} declares {info.file_size:,} bytes, over the "
                    f"cap of the file's own size, {limit:,} bytes"
                )
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    return f"member {info.filename!r} has npy format {version}, not 1.0 or 2.0"
            n_bytes = math.prod(shape) * dtype.itemsize
            if n_bytes > info.file_size:
                return (
                    f"member {info.filename!r} declares an array of {n_bytes:,} bytes, over the "
                    f"cap of the member's own size, {info.file_size:,} bytes"
                )
    return None


def write(path: Path, arrays: Mapping[str, np.ndarray], sig: str) -> None:
    """Store ``arrays`` at ``path`` atomically; a failure only logs a warning."""
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_KEY: np.array(sig)})
        os.replace(tmp, path)
    except OSError as e:
        log.warning(
            "could not write cache %s (%s); images will be decoded again next time", path, e
        )
        if tmp is not None:
            tmp.unlink(missing_ok=True)
