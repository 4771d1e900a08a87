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
