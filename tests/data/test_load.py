"""The registry: argument checks, root resolution and expected files (registry.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robust.data import DATASETS, Dataset, expected_files, load, resolve_root
from robust.data.registry import DATA_ENV, MAX_SIZE
from robust.errors import ConfigError
from tests.data.formats import write_idx_set


def test_public_names():
    import robust.data

    assert DATASETS == ("digits", "mnist", "fashion", "cifar10", "gtsrb", "intel")
    assert sorted(robust.data.__all__) == [
        "DATASETS",
        "Dataset",
        "Split",
        "expected_files",
        "fingerprint",
        "load",
        "resolve_root",
    ]


@pytest.mark.parametrize("name", ["nope", "MNIST", "", 3])
def test_unknown_dataset(name):
    with pytest.raises(
        ConfigError,
        match=rf"^unknown dataset {name!r}; choose one of digits, mnist, fashion, cifar10, "
        r"gtsrb, intel$",
    ):
        load(name)


@pytest.mark.parametrize("size", [0, -1, MAX_SIZE + 1, 2.5, True, "32"])
def test_bad_size(size):
    with pytest.raises(
        ConfigError, match=rf"^size must be None or an integer in 1\.\.{MAX_SIZE}, but got size="
    ):
        load("digits", size=size)


def test_smallest_size_is_allowed():
    assert load("digits", size=1).input_shape == (1, 1, 1)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, False, None])
def test_bad_seed(seed):
    with pytest.raises(ConfigError, match=r"^seed must be an integer in 0\.\.2\*\*32-1, but got"):
        load("digits", seed=seed)


def test_extreme_seeds_are_allowed():
    assert len(load("digits", seed=2**32 - 1).train) == len(load("digits", seed=0).train)


@pytest.mark.parametrize("flag", ["grayscale", "download"])
def test_flags_must_be_bool(flag):
    with pytest.raises(ConfigError, match=rf"^{flag} must be True or False, but got {flag}='yes'"):
        load("digits", **{flag: "yes"})


def test_bad_preset():
    with pytest.raises(
        ConfigError, match=r"^unknown preset 'seed000'; choose one of guided_retraining or None$"
    ):
        load("digits", preset="seed000")


@pytest.mark.parametrize("kwargs", [{"size": 28}, {"grayscale": True}])
def test_preset_excludes_size_and_grayscale(kwargs):
    with pytest.raises(ConfigError, match="sets size and grayscale itself"):
        load("mnist", preset="guided_retraining", **kwargs)


def test_bad_root(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^root must be a directory, but got root=.*a file$"):
        load("digits", tmp_path / "file")
    with pytest.raises(ConfigError, match=r"root must be a directory path .* but got root=3"):
        load("digits", 3)


def test_arguments_are_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="size must be"):
        load("mnist", tmp_path / "absent", size=0, download=True)
    assert not (tmp_path / "absent").exists()


def test_root_defaults_to_env_then_cwd_data(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "env" / "mnist")
    write_idx_set(tmp_path / "cwd" / "data" / "mnist", n_train=200)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert len(load("mnist", download=False).test) == 30
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.chdir(tmp_path / "cwd")
    ds = load("mnist", download=False)
    assert isinstance(ds, Dataset) and len(ds.train) + len(ds.val) == 200
    assert len(load("mnist", Path("data"), download=False).val) == 20


def test_resolve_root_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV, raising=False)
    cwd = Path.cwd()
    assert resolve_root() == cwd / "data"
    assert resolve_root("rel") == cwd / "rel" and resolve_root("rel").is_absolute()
    assert resolve_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv(DATA_ENV, "env")
    assert resolve_root() == cwd / "env"
    assert resolve_root("arg") == cwd / "arg"  # the argument wins
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^root must be a directory, but got root=.*a file$"):
        resolve_root("file")
    with pytest.raises(ConfigError, match=r"root must be a directory path .* but got root=3"):
        resolve_root(3)


@pytest.mark.parametrize("name", DATASETS)
def test_expected_files(name):
    files = expected_files(name)
    assert isinstance(files, list) and all(isinstance(f, str) for f in files)
    assert (files == []) == (name == "digits")


def test_expected_files_content():
    assert expected_files("mnist") == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert "cifar-10-binary.tar.gz" in expected_files("cifar10")
    assert "cifar-10-batches-py/test_batch" in expected_files("cifar10")
    assert expected_files("gtsrb")[0] == "GTSRB_Final_Training_Images.zip"
    assert expected_files("intel") == ["seg_train/seg_train/", "seg_test/seg_test/"]
    with pytest.raises(ConfigError, match="unknown dataset 'x'"):
        expected_files("x")
