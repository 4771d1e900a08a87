"""Read archive members with a size cap, so that a decompression bomb cannot exhaust memory.

Each loader that decompresses (``cifar`` tar members, ``gtsrb`` zip members, ``idx`` ``.gz``
streams) sets its own cap, ``MAX_MEMBER_BYTES``, well above its largest real file. A member is
refused with a one-line ``DataError`` naming the archive, the member and the cap when its declared
size (zip or tar header) exceeds the cap, or when it actually decompresses to more: the read asks
for at most ``cap + 1`` bytes, so no more than that is ever held in memory.
"""

from __future__ import annotations

import os
from typing import IO

from robust.errors import DataError


def read_capped(
    f: IO[bytes],
    *,
    archive: str | os.PathLike,
    member: str,
    cap: int,
    cap_name: str,
    declared: int | None = None,
) -> bytes:
    """Read all of the open member ``f``, refusing more than ``cap`` bytes.

    Args:
        f: the member, opened for binary reading (decompressing as it is read).
        archive: the archive's path, for the message.
        member: the member's name in the archive, for the message.
        cap: the most bytes accepted.
        cap_name: where the cap is set (e.g. ``"robust.data.cifar.MAX_MEMBER_BYTES"``).
        declared: the size the archive's header declares, checked before reading; None if the
            format declares none (gzip).

    Returns:
        The member's bytes, at most ``cap``.

    Raises:
        DataError: the declared or actual size exceeds ``cap``.
    """
    if declared is not None and declared > cap:
        raise DataError(too_big(archive, member, cap, cap_name, f"declares {declared:,} bytes"))
    data = f.read(cap + 1)
    if len(data) > cap:
        raise DataError(too_big(archive, member, cap, cap_name, "decompresses to more"))
    return data


def too_big(archive: str | os.PathLike, member: str, cap: int, cap_name: str, what: str) -> str:
    """The one-line message refusing ``member`` of ``archive`` for exceeding ``cap`` bytes."""
    return (
        f"{os.fspath(archive)} member {member!r} {what}, over the cap of {cap:,} bytes "
        f"({cap_name}); refusing to read it: the file is corrupt or a decompression bomb"
    )
