"""GTSRB training images from the folder tree or the zip, decoded and cached (gtsrb.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robust.data import gtsrb, load
from robust.errors import DataError
from tests.data.formats import gtsrb_contents, ppm_bytes, write_tree, write_zip

CSV0 = f"{gtsrb.IMAGES}/00000/GT-00000.csv"


@pytest.fixture
def contents():
    return gtsrb_contents(per_class=10)


@pytest.fixture
def tree(tmp_path, contents):
    write_tree(tmp_path / "gtsrb", contents)
    return tmp_path


def test_folder_loads_resized_stratified_80_10_10(tree):
    ds = load("gtsrb", tree, seed=0, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (344, 43, 43)
    assert ds.input_shape == (3, 48, 48) and ds.num_classes == 43
    assert ds.classes[:3] == ("0", "1", "2") and ds.classes[-1] == "42"
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() >= 0 and split.x.max() <= 1
    assert sorted(ds.val.y.tolist()) == list(range(43))  # one per class
    assert sorted(ds.test.y.tolist()) == list(range(43))


def test_zip_gives_the_same_data_as_the_folder(tmp_path, tree, contents):
    write_zip(tmp_path / "z" / "gtsrb" / gtsrb.ARCHIVE, contents)
    a = load("gtsrb", tree, seed=2, download=False)
    b = load("gtsrb", tmp_path / "z", seed=2, download=False)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)


def test_seeds_repeat_and_differ(tree):
    a, b, c = (load("gtsrb", tree, seed=s, download=False) for s in (1, 1, 2))
    assert torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.val.x, c.val.x)


def test_colour_is_kept_through_resize(tmp_path, contents):
    solid = np.zeros((9, 7, 3), dtype=np.uint8)
    solid[...] = (200, 100, 50)
    contents[f"{gtsrb.IMAGES}/00000/00000_00000.ppm"] = ppm_bytes(solid)
    write_tree(tmp_path / "gtsrb", contents)
    raw = gtsrb.load_raw(tmp_path / "gtsrb", False, 16, gray=False)
    assert raw.x.shape == (430, 3, 16, 16) and raw.x.dtype == np.uint8
    assert (raw.x[0, :, 8, 8] == (200, 100, 50)).all()
    gray = gtsrb.load_raw(tmp_path / "gtsrb", False, 16, gray=True)
    assert gray.x.shape == (430, 1, 16, 16)
    assert gray.x[0, 0, 8, 8] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)


def test_size_grayscale_and_preset(tree):
    assert load("gtsrb", tree, size=12, grayscale=True).input_shape == (1, 12, 12)
    assert load("gtsrb", tree, preset="guided_retraining").input_shape == (1, 48, 48)


def test_decoded_images_are_cached_and_refreshed(tree, monkeypatch):
    first = load("gtsrb", tree, size=10)
    cache = tree / "gtsrb" / "cache-10-rgb.npz"
    assert cache.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(gtsrb, "decode_all", fail)
    assert torch.equal(load("gtsrb", tree, size=10).train.x, first.train.x)
    # A changed source makes the cache stale.
    (tree / "gtsrb" / gtsrb.IMAGES / "00001" / "00000_00000.ppm").write_bytes(
        ppm_bytes(np.zeros((3, 3, 3), dtype=np.uint8))
    )
    with pytest.raises(AssertionError, match="decoded again"):
        load("gtsrb", tree, size=10)


def test_corrupt_cache_is_rebuilt(tree):
    load("gtsrb", tree, size=10)
    cache = tree / "gtsrb" / "cache-10-rgb.npz"
    cache.write_bytes(b"garbage")
    assert len(load("gtsrb", tree, size=10).train) == 344
    assert cache.stat().st_size > 100


@pytest.mark.parametrize(
    ("csv_text", "match"),
    [
        pytest.param(
            "Filename,Width\n", "must start with the header Filename;Width;", id="header"
        ),
        pytest.param("", "must start with the header .* but has an empty file", id="empty"),
        pytest.param(
            ";".join(gtsrb.COLUMNS) + "\n00000_00000.ppm;5;5;1;1;4;4;7\n",
            "line 2 has ClassId '7', expected 0",
            id="class-id",
        ),
        pytest.param(
            ";".join(gtsrb.COLUMNS) + "\n00000_00000.ppm;5;5\n",
            "line 2 has 3 fields, expected 8",
            id="fields",
        ),
        pytest.param(
            ";".join(gtsrb.COLUMNS) + "\n../../etc/passwd;5;5;1;1;4;4;0\n",
            "line 2 has an invalid Filename '../../etc/passwd'",
            id="traversal",
        ),
        pytest.param(
            ";".join(gtsrb.COLUMNS) + "\nnope.ppm;5;5;1;1;4;4;0\n",
            r"GT-00000\.csv lists nope\.ppm but .*00000/nope\.ppm is missing",
            id="missing-image",
        ),
    ],
)
def test_corrupt_csv_is_named(tmp_path, contents, csv_text, match):
    contents[CSV0] = csv_text.encode()
    write_tree(tmp_path / "gtsrb", contents)
    with pytest.raises(DataError, match=match):
        load("gtsrb", tmp_path, download=False)


def test_missing_class_csv_in_zip(tmp_path, contents):
    del contents[f"{gtsrb.IMAGES}/00042/GT-00042.csv"]
    write_zip(tmp_path / "gtsrb" / gtsrb.ARCHIVE, contents)
    with pytest.raises(
        DataError, match=r"zip:GTSRB/Final_Training/Images/00042/GT-00042\.csv not"
    ):
        load("gtsrb", tmp_path, download=False)


def test_corrupt_image_is_named(tmp_path, contents):
    contents[f"{gtsrb.IMAGES}/00003/00000_00001.ppm"] = b"P6\n garbage"
    write_tree(tmp_path / "gtsrb", contents)
    with pytest.raises(DataError, match=r"cannot read image .*00003/00000_00001\.ppm"):
        load("gtsrb", tmp_path, download=False)


def test_truncated_zip_is_named(tmp_path, contents):
    write_zip(tmp_path / "full.zip", contents)
    data = (tmp_path / "full.zip").read_bytes()
    (tmp_path / "gtsrb").mkdir()
    (tmp_path / "gtsrb" / gtsrb.ARCHIVE).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cannot read .*GTSRB_Final_Training_Images\.zip: "):
        load("gtsrb", tmp_path, download=False)


def test_missing_files_are_named_with_url(tmp_path):
    with pytest.raises(
        DataError,
        match=r"gtsrb files not found in .*gtsrb: expected GTSRB_Final_Training_Images\.zip or "
        r"its extracted folder GTSRB/Final_Training/Images/00000\.\.00042/; download it from "
        r"https://sid\.erda\.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
        r"GTSRB_Final_Training_Images\.zip",
    ):
        load("gtsrb", tmp_path, download=False)
