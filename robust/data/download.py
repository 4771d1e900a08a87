"""Download a published dataset file with a checksum, atomically, using only the standard library.

``fetch`` streams to a temporary file in the destination directory, checks the MD5 and only then
renames it into place with ``os.replace``, so an interrupted or failed download never leaves a
partial file behind. Progress goes to stderr through tqdm and is silent when stderr is not a
terminal. A download larger than ``MAX_DOWNLOAD_BYTES`` (declared by Content-Length or actually
received) is refused, so a wrong or hostile server cannot fill the disk.

Mirrors: set the environment variable ``ROBUST_DATA_MIRROR`` to a base URL and every loader
fetches ``<mirror>/<dataset>/<file name>`` instead of the publisher's URL (a lab mirror, a
``file://`` directory, or a local server in tests). Checksums are verified all the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from robust.errors import ConfigError, DataError

__all__ = ["MAX_DOWNLOAD_BYTES", "MIRROR_ENV", "Remote", "fetch", "fetch_all"]

MIRROR_ENV = "ROBUST_DATA_MIRROR"
# The largest published file fetched is GTSRB's training zip, ~276 MB (CIFAR-10's archive is
# ~170 MB, the IDX files under 30 MB); 1 GiB refuses none with a 3.9x margin.
MAX_DOWNLOAD_BYTES = 1 << 30
_SCHEMES = ("http", "https", "file")
_CHUNK = 1 << 20
_MD5 = re.compile(r"[0-9a-f]{32}")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Remote:
    """Where a dataset's files are published.

    Attributes:
        dataset: registry name, used as the sub-folder of a mirror.
        base_url: the publisher's URL that file names are appended to.
        page: a page where a person can get the files by hand.
        md5: file name → MD5 hex digest, for every file that can be fetched.
    """

    dataset: str
    base_url: str
    page: str
    md5: Mapping[str, str] = field(default_factory=dict)

    def url(self, filename: str) -> str:
        """The URL of ``filename``: the mirror's when ``ROBUST_DATA_MIRROR`` is set."""
        mirror = os.environ.get(MIRROR_ENV)
        if mirror:
            return f"{mirror.rstrip('/')}/{self.dataset}/{filename}"
        return self.base_url + filename


def fetch(
    url: str, dest: str | os.PathLike, md5: str | None, *, timeout: float = 30, hint: str = ""
) -> Path:
    """Download ``url`` to ``dest``, verifying its MD5; no partial file survives a failure.

    Args:
        url: an http, https or file URL.
        dest: the final path; its directory is created if needed.
        md5: expected lowercase hex MD5 digest, or None to skip the check.
        timeout: seconds to wait for the connection and for each read.
        hint: what to tell the user to do by hand if the download fails; by default "download
            <file> by hand from <url> into <directory>".

    Returns:
        ``dest`` as a Path.

    Raises:
        ConfigError: an argument is invalid.
        DataError: the download failed or the checksum did not match; nothing is left at
            ``dest`` or in a temporary file.

    Example:
        >>> fetch("https://example.org/a.gz", Path("data/a.gz"), md5=None)  # doctest: +SKIP
    """
    dest = Path(dest)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _SCHEMES:
        raise ConfigError(f"url must start with one of {', '.join(_SCHEMES)}:, but got {url=}")
    if md5 is not None and not _MD5.fullmatch(md5):
        raise ConfigError(f"md5 must be 32 lowercase hex digits or None, but got {md5=}")
    if not timeout > 0:
        raise ConfigError(f"timeout must be positive seconds, but got {timeout=}")
    hint = hint or f"download {dest.name} by hand from {url} into {dest.parent}"

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, timeout)
        if md5 is not None and digest != md5:
            raise DataError(
                f"download of {url} failed: checksum mismatch for {dest.name}, expected MD5 "
                f"{md5} but got {digest}; {hint}"
            )
        os.replace(tmp, dest)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, http.client.HTTPException, ValueError, _Truncated, _TooLarge) as e:
        tmp.unlink(missing_ok=True)
        raise DataError(f"download of {url} failed: {_reason(e)}; {hint}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("downloaded %s to %s", url, dest)
    return dest


def fetch_all(remote: Remote, directory: Path, names: Iterable[str], *, hint: str) -> None:
    """Fetch every file in ``names`` from ``remote`` into ``directory``, checking checksums."""
    for name in names:
        fetch(remote.url(name), directory / name, remote.md5.get(name), hint=hint)


def _stream(url: str, out, timeout: float) -> str:
    """Copy ``url`` into the open binary file ``out``; return the MD5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise _TooLarge(f"Content-Length is {total:,}")
        received = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            file=sys.stderr,
            disable=not _is_tty(),
        ) as bar:
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise _TooLarge("more was received")
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise _Truncated(f"truncated, got {received} of {total} bytes")
    return digest.hexdigest()


class _Truncated(Exception):
    """The server sent fewer bytes than its Content-Length announced."""


class _TooLarge(Exception):
    """The download is larger than ``MAX_DOWNLOAD_BYTES``."""

    def __str__(self) -> str:
        return (
            f"larger than the cap of {MAX_DOWNLOAD_BYTES:,} bytes "
            f"(robust.data.download.MAX_DOWNLOAD_BYTES): {self.args[0]}"
        )


def _reason(e: BaseException) -> str:
    if isinstance(e, _Truncated | _TooLarge):
        return str(e)
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return f"{type(e).__name__}: {e}"


def _is_tty() -> bool:
    with contextlib.suppress(AttributeError, ValueError):
        return sys.stderr.isatty()
    return False
