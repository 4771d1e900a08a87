"""robust/evaluation/adversarial.py: attack_report on hand-checkable cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class _Threshold(nn.Module):
    """Predicts class 1 when the first pixel exceeds 0.5, else class 0."""

    def forward(self, x):
        p = x.flatten(1)[:, :1]
        return torch.cat([0.5 - p, p - 0.5], 1)


def test_attack_report_counts_and_groups():
    from robust.evaluation import attack_report

    x = torch.tensor([0.2, 0.8, 0.9, 0.1]).view(4, 1, 1, 1)
    x_adv = torch.tensor([0.7, 0.3, 0.95, 0.1]).view(4, 1, 1, 1)
    y = torch.tensor([0, 1, 1, 1])  # the model gets the first three right, the last wrong
    r = attack_report(
        _Threshold(), x, x_adv, y, groups=torch.tensor([0, 0, 1, 1]), group_names=("a", "b")
    )
    assert r["clean_accuracy"] == 0.75
    assert r["accuracy"] == 0.25  # only input 2 survives
    assert r["success_rate"] == pytest.approx(2 / 3)  # inputs 0 and 1 of the 3 correct ones
    assert r["linf_max"] == pytest.approx(0.5) and r["l2_mean"] == pytest.approx(1.05 / 4)
    assert r["a/accuracy"] == 0.0 and r["b/accuracy"] == 0.5
    assert "a/accuracy" not in attack_report(_Threshold(), x, x_adv, y)
