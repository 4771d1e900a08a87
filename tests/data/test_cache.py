"""The decoded-image cache (cache.py)."""

from __future__ import annotations

import numpy as np

from robust.data import cache


def test_round_trip_and_stale_signature(tmp_path):
    path = cache.cache_path(tmp_path, 48, gray=True)
    assert path.name == "cache-48-gray.npz"
    arrays = {"x": np.arange(12, dtype=np.uint8).reshape(3, 4), "y": np.arange(3)}
    cache.write(path, arrays, "sig-1")
    got = cache.read(path, "sig-1")
    assert got is not None and np.array_equal(got["x"], arrays["x"]) and set(got) == {"x", "y"}
    assert cache.read(path, "sig-2") is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_unreadable_or_pickled_cache_is_ignored(tmp_path):
    path = tmp_path / "cache-8-rgb.npz"
    assert cache.read(path, "s") is None
    path.write_bytes(b"not a zip")
    assert cache.read(path, "s") is None
    np.savez(path, x=np.array([{"a": 1}], dtype=object), __signature__=np.array("s"))
    assert cache.read(path, "s") is None  # object arrays need pickle: refused


def test_write_failure_only_warns(tmp_path, caplog):
    cache.write(tmp_path / "missing-dir" / "cache-8-rgb.npz", {"x": np.zeros(1)}, "s")
    assert "could not write cache" in caplog.text


def test_signature_follows_file_changes(tmp_path):
    f = tmp_path / "a.ppm"
    f.write_bytes(b"1")
    before = cache.signature([f], tmp_path)
    f.write_bytes(b"22")
    assert cache.signature([f], tmp_path) != before
