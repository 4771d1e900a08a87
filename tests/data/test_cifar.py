"""CIFAR-10 binary and python batches, archives, and the restricted unpickler (cifar.py)."""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from robust.data import load
from robust.data.cifar import BIN_ARCHIVE, BIN_DIR, BIN_FILES, PY_DIR, read_python_batch
from robust.errors import DataError
from tests.data.formats import cifar_batches, cifar_python_bytes, write_cifar, write_tar


def _official(batches):
    x = np.concatenate([b[0] for b in batches[:5]])
    return x, batches[5][0]


@pytest.mark.parametrize(
    ("version", "archive"),
    [
        pytest.param("bin", False, id="binary-folder"),
        pytest.param("bin", True, id="binary-tar.gz"),
        pytest.param("py", False, id="python-folder"),
        pytest.param("py", True, id="python-tar.gz"),
    ],
)
def test_load_every_published_layout(tmp_path, version, archive):
    batches = write_cifar(tmp_path / "cifar10", version, archive=archive)
    ds = load("cifar10", tmp_path, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 20)
    assert ds.input_shape == (3, 32, 32) and ds.classes[0] == "airplane"
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    _, test_x = _official(batches)
    torch.testing.assert_close(ds.test.x, torch.from_numpy(test_x / 255).float())
    assert ds.test.y.tolist() == batches[5][1].tolist()
    assert sorted(ds.val.y.tolist()) == list(range(10))  # stratified 10 %


def test_binary_tar_is_extracted_once(tmp_path):
    write_cifar(tmp_path / "cifar10", "bin", archive=True)
    load("cifar10", tmp_path, download=False)
    assert sorted(p.name for p in (tmp_path / "cifar10" / BIN_DIR).iterdir()) == sorted(BIN_FILES)
    (tmp_path / "cifar10" / BIN_ARCHIVE).unlink()
    assert len(load("cifar10", tmp_path, download=False).test) == 20


def test_binary_and_python_versions_agree(tmp_path):
    batches = cifar_batches()
    write_cifar(tmp_path / "a" / "cifar10", "bin", batches)
    write_cifar(tmp_path / "b" / "cifar10", "py", batches)
    a, b = load("cifar10", tmp_path / "a", seed=5), load("cifar10", tmp_path / "b", seed=5)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)


def test_python_batch_written_by_python3_loads(tmp_path):
    x, y = cifar_batches(4, 4)[0]
    path = tmp_path / "batch"
    path.write_bytes(cifar_python_bytes(x, y, py2=False))
    got_x, got_y = read_python_batch(path)
    np.testing.assert_array_equal(got_x, x)
    assert got_y.dtype == np.int64 and got_y.tolist() == y.tolist()


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


@pytest.mark.parametrize(
    "fn", [pytest.param(os.system, id="os.system"), pytest.param(exec, id="builtins.exec")]
)
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, fn):
    marker = tmp_path / "pwned"
    command = f"open({str(marker)!r}, 'w').close()" if fn is exec else f"touch {marker}"
    write_cifar(tmp_path / "cifar10", "py")
    evil = {"data": _Evil(fn, command), "labels": [0]}
    (tmp_path / "cifar10" / PY_DIR / "test_batch").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DataError, match=r"test_batch asks to load .*refusing to unpickle it"):
        load("cifar10", tmp_path, download=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        pytest.param(b"not a pickle", "not a valid CIFAR-10 python batch", id="garbage"),
        pytest.param(pickle.dumps([1, 2]), "holds a list, not a CIFAR-10 batch dict", id="list"),
        pytest.param(pickle.dumps({"labels": [1]}), "no 'data' entry", id="no-data"),
        pytest.param(
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, protocol=4),
            r"holds 2 images but 'labels' has shape \(1,\)",
            id="label-count",
        ),
    ],
)
def test_malformed_python_batch(tmp_path, payload, match):
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=match):
        read_python_batch(path)


def test_binary_batch_with_wrong_size_or_label(tmp_path):
    write_cifar(tmp_path / "cifar10", "bin")
    path = tmp_path / "cifar10" / BIN_DIR / "data_batch_3.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(
        DataError,
        match=r"data_batch_3\.bin has 61459 bytes, not a positive "
        r"multiple of the 3073-byte",
    ):
        load("cifar10", tmp_path, download=False)
    path.write_bytes(bytes([12]) + data[1:])
    with pytest.raises(DataError, match=r"data_batch_3\.bin contains label 12, outside 0\.\.9"):
        load("cifar10", tmp_path, download=False)


def test_archive_without_expected_member_or_with_link(tmp_path):
    directory = tmp_path / "cifar10"
    directory.mkdir()
    write_tar(directory / BIN_ARCHIVE, {"../escape.bin": b"x" * 3073})
    with pytest.raises(DataError, match=r"has no member cifar-10-batches-bin/data_batch_1\.bin"):
        load("cifar10", tmp_path, download=False)
    assert not (tmp_path / "escape.bin").exists()

    with tarfile.open(directory / BIN_ARCHIVE, "w:gz") as tar:
        link = tarfile.TarInfo(f"{BIN_DIR}/data_batch_1.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DataError, match=r"data_batch_1\.bin is not a regular file"):
        load("cifar10", tmp_path, download=False)


def test_corrupt_archive(tmp_path):
    (tmp_path / "cifar10").mkdir()
    write_cifar(tmp_path / "ok", "bin", archive=True)
    good = (tmp_path / "ok" / BIN_ARCHIVE).read_bytes()
    (tmp_path / "cifar10" / BIN_ARCHIVE).write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cannot read .*cifar-10-binary\.tar\.gz: .*complete"):
        load("cifar10", tmp_path, download=False)


def test_missing_files_are_named_with_url(tmp_path):
    with pytest.raises(
        DataError,
        match=r"cifar10 files not found in .*: expected cifar-10-batches-bin/ with "
        r"data_batch_1\.bin, .*test_batch\.bin or cifar-10-binary\.tar\.gz .*download them "
        r"from https://www\.cs\.toronto\.edu/~kriz/cifar\.html or pass download=True",
    ):
        load("cifar10", tmp_path, download=False)


def test_grayscale_and_preset_weights(tmp_path):
    batches = cifar_batches()
    for x, _ in batches:
        x[:] = 0
        x[:, 0] = 100  # pure red
    write_cifar(tmp_path / "cifar10", "bin", batches)
    gray = load("cifar10", tmp_path, grayscale=True, size=8)
    assert gray.input_shape == (1, 8, 8)
    assert torch.allclose(gray.test.x, torch.tensor(30 / 255))  # 0.299 * 100 = 29.9 → 30
    seed = load("cifar10", tmp_path, preset="guided_retraining")
    assert seed.input_shape == (1, 32, 32)
    assert torch.allclose(seed.test.x, torch.tensor(11 / 255))  # swapped: 0.114 * 100 → 11
    # 120 images: ceil((1 - 0.7) * 120) = 37 held out (float rounding, as in the seed),
    # ceil(37 / 3) = 13 of them test.
    assert (len(seed.train), len(seed.val), len(seed.test)) == (83, 24, 13)
