"""Intel Image Classification from Kaggle's folder layout (intel.py)."""

from __future__ import annotations

import shutil

import pytest
import torch

from robust.data import intel, load
from robust.errors import DataError
from tests.data.formats import write_intel


@pytest.fixture
def root(tmp_path):
    write_intel(tmp_path / "intel", n_train=10, n_test=3, side=40)
    return tmp_path


@pytest.mark.parametrize("doubled", [True, False], ids=["seg_train/seg_train", "seg_train"])
def test_loads_train_val_and_seg_test(tmp_path, doubled):
    write_intel(tmp_path / "intel", n_train=10, n_test=3, doubled=doubled, side=40)
    ds = load("intel", tmp_path, size=40, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (48, 12, 18)
    assert ds.input_shape == (3, 40, 40)
    assert ds.classes == ("buildings", "forest", "glacier", "mountain", "sea", "street")
    assert sorted(ds.val.y.tolist()) == sorted(list(range(6)) * 2)  # stratified 20 %
    assert ds.test.y.tolist() == sorted(list(range(6)) * 3)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() >= 0 and split.x.max() <= 1


def test_native_size_is_150_and_odd_sizes_are_resized(tmp_path):
    write_intel(tmp_path / "intel", n_train=5, n_test=2)  # 150 px, one 120×160 per class
    raw = intel.load_raw(tmp_path / "intel", intel.NATIVE_SIZE, gray=False)
    assert raw.x.shape == (30, 3, 150, 150) and raw.test_x.shape == (12, 3, 150, 150)
    # Solid grey level 40 * label survives JPEG and resizing (within JPEG error).
    assert abs(int(raw.x[5, 0, 75, 75]) - 40) <= 2  # first image of class 1 is the odd size
    assert abs(int(raw.test_x[-1, 2, 100, 100]) - 200) <= 2


def test_grayscale_size_and_preset(root):
    assert load("intel", root, size=16, grayscale=True).input_shape == (1, 16, 16)
    ds = load("intel", root, preset="guided_retraining")
    assert ds.input_shape == (1, 48, 48)
    assert (root / "intel" / "cache-48-gray.npz").is_file()


def test_seeds_repeat_and_differ(root):
    a, b, c = (load("intel", root, seed=s, size=8) for s in (0, 0, 1))
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)
    assert torch.equal(a.test.x, c.test.x)  # seg_test is fixed


def test_missing_names_kaggle_page(tmp_path):
    with pytest.raises(
        DataError,
        match=r"intel files not found in .*intel: expected seg_train/seg_train/<class>/\*\.jpg "
        r"and seg_test/seg_test/<class>/\*\.jpg .*there is no public direct download \(Kaggle "
        r"requires a login\), so download archive\.zip from "
        r"https://www\.kaggle\.com/datasets/puneet6060/intel-image-classification",
    ):
        load("intel", tmp_path, download=True)


def test_missing_class_folder(root):
    shutil.rmtree(root / "intel" / "seg_test" / "seg_test" / "sea")
    with pytest.raises(DataError, match=r"intel class folders sea not found in .*seg_test"):
        load("intel", root)


def test_empty_class_folder(root):
    for f in (root / "intel" / "seg_train" / "seg_train" / "forest").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"seg_train/forest holds no \.jpg images"):
        load("intel", root)


def test_corrupt_jpg_is_named(root):
    (root / "intel" / "seg_train" / "seg_train" / "glacier" / "3.jpg").write_bytes(b"\xff\xd8nope")
    with pytest.raises(DataError, match=r"cannot read image .*glacier/3\.jpg"):
        load("intel", root)
