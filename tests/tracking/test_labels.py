"""Labels of model and attack runs (robust/tracking/labels.py)."""

from __future__ import annotations

import pytest

from robust.tracking import Lineage, labels


@pytest.mark.parametrize(
    ("params", "label"),
    [
        pytest.param({"method": "pgd", "norm": "inf", "preset": "auto"}, "pgd", id="pgd"),
        pytest.param({"method": "fgsm", "norm": "2"}, "fgsm-l2", id="l2"),
        pytest.param({"method": "dgn", "loss": "susp", "norm": "inf"}, "dgn-susp", id="dgn"),
        pytest.param(
            {"method": "pgd", "preset": "guided_retraining"}, "guided_retraining", id="gr"
        ),
        pytest.param({"method": "bim", "norm": "auto", "resolved.norm": "1"}, "bim-l1", id="res"),
    ],
)
def test_attack_labels_come_from_the_params(params, label):
    assert labels.method_label(params) == label


def test_online_advtrain_is_labelled_by_its_own_method():
    from types import SimpleNamespace

    params = {"mode": "online", "method": "pgd"}
    run = SimpleNamespace(data=SimpleNamespace(params=params, tags={}))
    assert labels._trained_on(Lineage(), run) == "online-pgd"
    assert labels.safe("dgn-my loss/2") == "dgn-my_loss_2"


def test_a_name_several_runs_share_gets_each_run_ids_start():
    ids = ["1a2b3c4d" + "0" * 24, "5e6f7a8b" + "0" * 24, "9c0d1e2f" + "0" * 24]
    assert labels.unique(["train digits_cnn", "advtrain fgsm α=0.5", "train digits_cnn"], ids) == [
        "train digits_cnn (1a2b3c4d)",
        "advtrain fgsm α=0.5",
        "train digits_cnn (9c0d1e2f)",
    ]


@pytest.mark.parametrize(
    ("label", "kind"),
    [("worst case", "worst_case"), ("fgsm-1a2b3c4d", "fgsm"), ("autoattack", "autoattack")],
)
def test_kind_of_a_label_without_a_recorded_kind(label, kind):
    assert labels.kind(label) == kind
