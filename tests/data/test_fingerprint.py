"""The data fingerprint: it follows exactly the files a loader reads (_fingerprint.py)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from robust.data import _fingerprint, cifar, fingerprint, gtsrb
from robust.data.registry import DATA_ENV
from robust.errors import ConfigError
from tests.data.formats import (
    gtsrb_contents,
    jpg_bytes,
    write_cifar,
    write_idx_set,
    write_intel,
    write_tree,
)

LABELS = "train-labels-idx1-ubyte.gz"


@pytest.fixture
def mnist(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=20, n_test=10, side=4)
    return tmp_path


def _rewrite(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and restore its modification time, as a same-second edit."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _flip_last_byte(path: Path) -> None:
    data = path.read_bytes()
    _rewrite(path, data[:-1] + bytes([data[-1] ^ 0xFF]))


def test_format_and_equal_for_the_same_files(mnist, tmp_path):
    fp = fingerprint("mnist", mnist)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", fp)
    assert fingerprint("mnist", mnist) == fp
    # A copy that keeps modification times, elsewhere, fingerprints the same.
    shutil.copytree(mnist / "mnist", tmp_path / "copy" / "mnist")
    assert fingerprint("mnist", tmp_path / "copy") == fp


def test_root_defaults_to_the_environment(mnist, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(mnist))
    assert fingerprint("mnist") == fingerprint("mnist", mnist)


def test_same_size_content_change_of_a_small_file(mnist):
    before = fingerprint("mnist", mnist)
    _flip_last_byte(mnist / "mnist" / LABELS)
    assert fingerprint("mnist", mnist) != before


def test_large_files_count_by_size_and_time_only(mnist, monkeypatch):
    path = mnist / "mnist" / LABELS
    monkeypatch.setattr(_fingerprint, "HASH_LIMIT", path.stat().st_size - 1)
    before = fingerprint("mnist", mnist)
    _flip_last_byte(path)
    assert fingerprint("mnist", mnist) == before  # above the limit: content not read
    monkeypatch.setattr(_fingerprint, "HASH_LIMIT", path.stat().st_size)
    hashed = fingerprint("mnist", mnist)
    _flip_last_byte(path)
    assert fingerprint("mnist", mnist) != hashed  # at the limit: content hashed


def test_truncated_file(mnist):
    before = fingerprint("mnist", mnist)
    path = mnist / "mnist" / LABELS
    _rewrite(path, path.read_bytes()[:-4])
    assert fingerprint("mnist", mnist) != before


def test_modification_time(mnist):
    before = fingerprint("mnist", mnist)
    path = mnist / "mnist" / LABELS
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert fingerprint("mnist", mnist) != before


def test_deleted_and_added_expected_files(mnist):
    full = fingerprint("mnist", mnist)
    (mnist / "mnist" / LABELS).unlink()
    deleted = fingerprint("mnist", mnist)
    assert deleted != full
    # The uncompressed name, which the loader also accepts, counts as an expected file.
    (mnist / "mnist" / LABELS.removesuffix(".gz")).write_bytes(b"\0\0\x08\x01\0\0\0\0")
    assert fingerprint("mnist", mnist) not in (full, deleted)


def test_empty_directory_differs_from_full(mnist, tmp_path):
    (tmp_path / "empty" / "mnist").mkdir(parents=True)
    empty = fingerprint("mnist", tmp_path / "empty")
    assert empty != fingerprint("mnist", mnist)
    assert fingerprint("mnist", tmp_path / "absent") == empty  # nothing to read either way


def test_unrelated_files_do_not_count(mnist):
    before = fingerprint("mnist", mnist)
    (mnist / "mnist" / "README.txt").write_text("notes")
    (mnist / "mnist" / "cache-28-rgb.npz").write_bytes(b"cache")
    (mnist / "mnist" / "sub").mkdir()
    (mnist / "mnist" / "sub" / LABELS).write_bytes(b"elsewhere")
    assert fingerprint("mnist", mnist) == before


def test_dataset_name_counts(mnist):
    shutil.copytree(mnist / "mnist", mnist / "fashion")
    assert fingerprint("fashion", mnist) != fingerprint("mnist", mnist)


def test_folder_entries_cover_every_file_below(tmp_path):
    write_tree(tmp_path / "gtsrb", gtsrb_contents(per_class=1))
    images = tmp_path / "gtsrb" / gtsrb.IMAGES
    before = fingerprint("gtsrb", tmp_path)
    (tmp_path / "gtsrb" / "cache-48-rgb.npz").write_bytes(b"cache")  # written by the loader
    assert fingerprint("gtsrb", tmp_path) == before
    (images / "00042" / "extra.ppm").write_bytes(b"P6")
    added = fingerprint("gtsrb", tmp_path)
    assert added != before
    (images / "00042" / "extra.ppm").unlink()
    assert fingerprint("gtsrb", tmp_path) == before
    _flip_last_byte(images / "00007" / "GT-00007.csv")
    assert fingerprint("gtsrb", tmp_path) not in (before, added)


def test_archive_added_next_to_the_folder(tmp_path):
    write_cifar(tmp_path / "cifar10", "bin")
    folder = fingerprint("cifar10", tmp_path)
    write_cifar(tmp_path / "cifar10", "bin", archive=True)
    assert (tmp_path / "cifar10" / cifar.BIN_ARCHIVE).is_file()
    assert fingerprint("cifar10", tmp_path) != folder


@pytest.mark.parametrize("doubled", [True, False], ids=["doubled", "single"])
def test_intel_layouts_are_covered(tmp_path, doubled):
    write_intel(tmp_path / "intel", n_train=2, n_test=1, doubled=doubled, side=40)
    before = fingerprint("intel", tmp_path)
    part = "seg_test/seg_test" if doubled else "seg_test"
    path = tmp_path / "intel" / part / "sea" / "0.jpg"
    _rewrite(path, jpg_bytes(np.zeros((40, 40, 3), dtype=np.uint8)))
    assert fingerprint("intel", tmp_path) != before


def test_digits_is_stable_and_follows_scikit_learn(tmp_path, monkeypatch):
    fp = fingerprint("digits")
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", fp)
    assert fingerprint("digits", tmp_path) == fp  # bundled: the data directory does not count
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.0")
    assert fingerprint("digits") != fp


def test_invalid_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"^unknown dataset 'nope'; choose one of digits, "):
        fingerprint("nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^root must be a directory, but got root='.*file'"):
        fingerprint("mnist", tmp_path / "file")
    with pytest.raises(ConfigError, match=r"^root must be a directory path .* but got root=3$"):
        fingerprint("mnist", 3)
