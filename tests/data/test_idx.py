"""MNIST / Fashion-MNIST IDX parsing and loading (robust/data/idx.py)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from robust.data import load
from robust.data.idx import FILES, IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx
from robust.errors import DataError
from tests.data.formats import idx_bytes, write_idx_set


def test_parse_idx_reads_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images), IMAGES_MAGIC, "f"), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels), LABELS_MAGIC, "f"), labels)


def test_parse_idx_rejects_bad_magic():
    labels = idx_bytes(np.zeros(3, dtype=np.uint8))
    with pytest.raises(
        DataError, match=r"f has a bad magic number 0x00000801; expected 0x00000803"
    ):
        parse_idx(labels, IMAGES_MAGIC, "f")
    with pytest.raises(DataError, match="bad magic number 0x1f8b0800"):
        parse_idx(b"\x1f\x8b\x08\x00" + bytes(20), LABELS_MAGIC, "f")


@pytest.mark.parametrize(
    ("cut", "match"),
    [
        pytest.param(2, "truncated: 2 bytes, shorter than the IDX header", id="in-magic"),
        pytest.param(8, "truncated: 8 bytes, shorter than its header", id="in-dims"),
        pytest.param(-1, r"truncated: its header gives dimensions \(2, 3, 4\)", id="in-data"),
    ],
)
def test_parse_idx_rejects_truncated(cut, match):
    data = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=match):
        parse_idx(data[:cut], IMAGES_MAGIC, "f")


def test_parse_idx_rejects_trailing_bytes():
    data = idx_bytes(np.zeros((2, 3, 4), dtype=np.uint8)) + b"\0"
    with pytest.raises(DataError, match=r"too long: .* 40 bytes, but the file has 41"):
        parse_idx(data, IMAGES_MAGIC, "f")


def test_read_idx_rejects_truncated_and_fake_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cannot read .*cut\.gz: .*is the download complete"):
        read_idx(tmp_path / "cut.gz", IMAGES_MAGIC)
    (tmp_path / "html.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match=r"cannot read .*html\.gz"):
        read_idx(tmp_path / "html.gz", IMAGES_MAGIC)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "uncompressed"])
def test_load_mnist_splits_official_train_and_keeps_test(tmp_path, gz):
    arrays = write_idx_set(tmp_path / "mnist", n_train=100, n_test=30, gz=gz)
    ds = load("mnist", tmp_path, seed=0, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 30)
    assert ds.input_shape == (1, 28, 28) and ds.classes == tuple("0123456789")
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
    # Official test set unchanged, in order; val is stratified: one image of each class.
    expected = torch.from_numpy(arrays["t10k-images"][:, None].astype(np.float32) / 255)
    torch.testing.assert_close(ds.test.x, expected, rtol=0, atol=0)
    assert sorted(ds.val.y.tolist()) == list(range(10))
    # Train and val together are the official training set.
    merged = torch.cat([ds.train.x, ds.val.x]).flatten(1).sum(1).sort().values
    official = torch.from_numpy(arrays["train-images"].astype(np.float32) / 255)
    torch.testing.assert_close(merged, official.flatten(1).sum(1).sort().values)


def test_load_mnist_is_deterministic_per_seed(tmp_path):
    write_idx_set(tmp_path / "mnist")
    a, b = load("mnist", tmp_path, seed=3), load("mnist", tmp_path, seed=3)
    c = load("mnist", tmp_path, seed=4)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)


def test_load_fashion_has_named_classes(tmp_path):
    write_idx_set(tmp_path / "fashion")
    ds = load("fashion", tmp_path)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"
    assert ds.num_classes == 10


def test_load_mnist_preset_uses_seed_split(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=100, n_test=30, side=20)
    ds = load("mnist", tmp_path, preset="guided_retraining")
    # 130 images: ceil((1 - 0.7) * 130) = 40 held out, of which ceil(40 / 3) = 14 are test.
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 26, 14)
    assert ds.input_shape == (1, 28, 28)


def test_missing_files_are_named_with_url(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / FILES[0]).write_bytes(b"")
    with pytest.raises(
        DataError,
        match=r"mnist files not found in .*mnist: expected train-images-idx3-ubyte\.gz, "
        r"train-labels-idx1-ubyte\.gz, t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz "
        r"\(missing train-labels.*\); download them from https://ossci-datasets\.s3\.amazonaws"
        r"\.com/mnist/ or pass download=True",
    ):
        load("mnist", tmp_path, download=False)


def test_corrupt_file_in_dataset_is_named(tmp_path):
    write_idx_set(tmp_path / "fashion")
    path = tmp_path / "fashion" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((30, 2), dtype=np.uint8))))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz has a bad magic number"):
        load("fashion", tmp_path, download=False)


def test_label_count_mismatch_and_bad_label(tmp_path):
    write_idx_set(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(99, dtype=np.uint8))))
    with pytest.raises(
        DataError, match=r"holds 100 images but train-labels-idx1-ubyte\.gz holds 99"
    ):
        load("mnist", tmp_path, download=False)
    path.write_bytes(gzip.compress(idx_bytes(np.full(100, 10, dtype=np.uint8))))
    with pytest.raises(DataError, match=r"contains label 10, outside 0\.\.9"):
        load("mnist", tmp_path, download=False)
