"""Tests of robust/models/io.py: save/load with safetensors + spec.json, never pickle."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from robust.errors import ConfigError, DataError
from robust.models import build, load, save

CLASSES = [str(i) for i in range(10)]


@pytest.fixture
def model() -> torch.nn.Module:
    return build("digits_cnn", input_shape=(1, 8, 8), num_classes=10)


@pytest.fixture
def saved(model, tmp_path) -> Path:
    return save(model, tmp_path / "model", dataset="digits", classes=CLASSES)


@pytest.fixture
def no_pickle(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("pickle-based loading must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_round_trip_gives_identical_outputs(model, saved, no_pickle) -> None:
    x = torch.rand(7, 1, 8, 8)
    model.eval()
    loaded = load(saved)
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_files_and_spec(model, saved) -> None:
    assert sorted(p.name for p in saved.iterdir()) == ["model.safetensors", "spec.json"]
    spec = json.loads((saved / "spec.json").read_text())
    assert spec == {
        "format_version": 1,
        "architecture": "digits_cnn",
        "input_shape": [1, 8, 8],
        "num_classes": 10,
        "dataset": "digits",
        "classes": CLASSES,
    }
    expected = {
        "architecture": "digits_cnn",
        "input_shape": (1, 8, 8),
        "num_classes": 10,
        "dataset": "digits",
        "classes": CLASSES,
    }
    assert model.spec == expected
    assert load(saved).spec == expected
    assert load(saved).last_hidden == "fc1"


def test_other_shape_round_trip(tmp_path) -> None:
    model = build("gtsrb_cnn", input_shape=(3, 20, 24), num_classes=5).eval()
    loaded = load(save(model, tmp_path, dataset="gtsrb", classes="abcde"))
    x = torch.rand(2, 3, 20, 24)
    assert torch.equal(loaded(x), model(x))


def test_load_onto_auto_device(saved) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(load(saved, device="auto").parameters()).device.type == expected


def test_save_rejects_non_zoo_models(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"model must be a zoo model .*but got Sequential"):
        save(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path, dataset="d", classes="ab")


def test_save_checks_the_class_names(model, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"classes must name each of the model's 10 outputs, "):
        save(model, tmp_path, dataset="digits", classes=CLASSES[:9])


def test_missing_spec(saved) -> None:
    (saved / "spec.json").unlink()
    with pytest.raises(DataError, match=r"spec.json is missing"):
        load(saved)


def test_missing_weights(saved) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(DataError, match=r"model.safetensors is missing"):
        load(saved)


def test_corrupt_weights(saved, no_pickle) -> None:
    (saved / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(DataError, match=r"model.safetensors must be a safetensors file"):
        load(saved)


def test_invalid_json(saved) -> None:
    (saved / "spec.json").write_text("{not json")
    with pytest.raises(DataError, match=r"spec.json must be valid JSON"):
        load(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param({"architecture": "vgg"}, r"must name an architecture among", id="arch"),
        pytest.param({"format_version": 2}, r"must have format_version 1, but has 2", id="ver"),
        pytest.param({"input_shape": [1, 8]}, r"describes a model that cannot be built", id="shp"),
        pytest.param({"num_classes": 9}, r"must hold the weights of digits_cnn", id="classes"),
    ],
)
def test_invalid_spec(saved, change, message) -> None:
    spec = json.loads((saved / "spec.json").read_text())
    (saved / "spec.json").write_text(json.dumps({**spec, **change}))
    with pytest.raises(DataError, match=message):
        load(saved)


def test_spec_lacking_keys(saved) -> None:
    (saved / "spec.json").write_text(json.dumps({"architecture": "digits_cnn"}))
    with pytest.raises(DataError, match=r"lacks format_version, input_shape, num_classes"):
        load(saved)


def test_missing_path_is_a_one_line_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match=r"must be a saved model directory, but '.*nowhere'"):
        load(tmp_path / "nowhere")


def test_a_run_id_points_to_results_load_model() -> None:
    """The zoo knows nothing of MLflow: a run id is not looked up, the error names the way."""
    with pytest.raises(DataError, match=r"use robust\.results\.load_model\(run_id\)$"):
        load("0123456789abcdef0123456789abcdef")
