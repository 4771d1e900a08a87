"""robust.results.replication on synthetic studies: seed 000's curves plus a known offset."""

from __future__ import annotations

import json
from importlib import resources

import mlflow
import numpy as np
import pandas as pd
import pytest

from robust import data, guidance, results
from robust.errors import ConfigError
from robust.results import replication
from robust.retraining import STYLES, mean_ci

SPREAD = (-0.002, 0.0, 0.002)  # per-seed deviations: the mean over seeds is the offset itself


def synthetic(
    dataset: str, config: str, offset: float, *, fractions=None, pool=None, seed_names=False
) -> pd.DataFrame:
    """A curves table (:func:`robust.results.retraining_curves` columns) whose mean over three
    seeds is the seed's curve plus ``offset``: at the seed's own sets, or at ``fractions`` of a
    pool of ``pool`` inputs (the seed's curve interpolated there)."""
    ref = replication.reference_curves(dataset, config)
    frames = []
    for metric, curve in ref.groupby("metric", sort=False):
        if fractions is None:
            base = curve[["step", "n_inputs", "fraction", "accuracy_combined"]]
        else:
            acc = np.interp(fractions, curve.fraction, curve.accuracy_combined)
            n = np.round(np.asarray(fractions) * pool).astype(int)
            first = 0 if fractions[0] == 0 else 1
            base = pd.DataFrame(
                {
                    "step": np.arange(len(n)) + first,
                    "n_inputs": n,
                    "fraction": n / pool,
                    "accuracy_combined": acc,
                }
            )
        for seed, delta in enumerate(SPREAD):
            frames.append(
                base.assign(
                    config=config,
                    metric=metric,
                    seed=seed,
                    accuracy_combined=base.accuracy_combined + offset + delta,
                    accuracy_clean=0.9,
                    fit_s=1.0,
                )
            )
    table = pd.concat(frames, ignore_index=True)
    if seed_names:
        table["metric"] = table.metric.map({v: k for k, v in replication.METRIC_NAMES.items()})
    return table


def test_reference_curves_ship_as_package_data_in_our_names():
    packaged = resources.files("robust.results").joinpath(replication.DATA_FILE)
    raw = pd.read_csv(packaged.open())
    assert list(raw.columns) == [
        "dataset",
        "config",
        "metric",
        "step",
        "n_inputs",
        "accuracy_test_plus_adv",
    ]
    assert len(raw) == 1908
    ref = results.reference_curves()
    assert list(ref.columns) == list(replication.REFERENCE_COLUMNS)
    assert set(ref.dataset) == set(replication.REFERENCE_DATASETS)
    assert set(ref.metric) == set(guidance.METRICS)
    assert len(ref) == len(raw) - 5 * 6  # c1's step-0 placeholders (accuracy 0) left out
    assert not ((ref.config == "c1") & (ref.step == 0)).any()
    # values from the notes' table of maxima: MNIST C2 DG .9923@14000, CIFAR C3 Random .6532@5400
    one = ref.set_index(["dataset", "config", "metric", "n_inputs"]).accuracy_combined
    assert one["mnist", "c2", "deepgini", 14000] == 0.9923
    assert one["cifar10", "c3", "random", 5400] == 0.6532
    last = ref.groupby(["dataset", "config"]).fraction.max()
    assert np.allclose(last, 1.0)


def test_names_map_onto_ours():
    assert sorted(replication.METRIC_NAMES.values()) == sorted(guidance.METRICS)
    assert set(replication.REFERENCE_DATASETS) <= set(data.DATASETS)
    assert "digits" not in replication.REFERENCE_DATASETS
    assert replication.DATASET_NAMES["cifar"] == "cifar10"
    assert replication.METRIC_NAMES["DG"] == "deepgini"
    assert replication.METRIC_NAMES["SE"] == "entropy"
    # a table in the seed's metric names is read in ours
    rep = results.compare_to_seed(synthetic("intel", "c2", 0.0, seed_names=True), "intel", "c2")
    assert list(rep.summary.metric) == list(replication.METRIC_NAMES.values())


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
@pytest.mark.parametrize("config", ["c1", "c2", "c3"])
def test_a_known_offset_is_recovered_at_the_seeds_own_sets(dataset, config):
    rep = results.compare_to_seed(synthetic(dataset, config, 0.01), dataset)
    assert (rep.dataset, rep.config, rep.match) == (dataset, config, "size")
    d = rep.differences
    assert list(d.columns) == list(replication.DIFFERENCE_COLUMNS)
    assert len(d) == len(replication.reference_curves(dataset, config))
    assert (d.n_seeds == 3).all()
    np.testing.assert_allclose(d.difference, 0.01, atol=1e-12)
    np.testing.assert_allclose(d["mean"] - d.seed_accuracy, d.difference)
    assert (d.seed_n_inputs == d.n_inputs).all()
    # half-width t(2) · 0.002 = 0.0050 < 0.01: the seed's value lies below every interval
    assert not d.seed_in_ci.any()
    s = rep.summary
    assert list(s.columns) == list(replication.SUMMARY_COLUMNS)
    np.testing.assert_allclose(s.mean_abs_difference, 0.01, atol=1e-12)
    np.testing.assert_allclose(s.mean_difference, 0.01, atol=1e-12)
    assert (s.seed_in_ci_share == 0).all()
    assert (0 in set(d.n_inputs)) == (config != "c1")


def test_the_interval_is_the_retraining_t_interval_and_holds_the_seed_without_offset():
    table = synthetic("gtsrb", "c3", 0.0)
    rep = results.compare_to_seed(table, "gtsrb", "c3", confidence=0.9)
    row = rep.differences.iloc[5]
    values = table.query(f"metric == '{row.metric}' and step == {row.step}").accuracy_combined
    expected = mean_ci(values, confidence=0.9)
    assert (row["mean"], row.ci_low, row.ci_high) == pytest.approx(
        (expected.mean, expected.low, expected.high)
    )
    assert rep.differences.seed_in_ci.all()
    assert (rep.summary.seed_in_ci_share == 1).all()


def test_with_several_originals_the_interval_is_over_the_originals_means():
    """Two originals × three seeds: each original's mean over its seeds is one unit."""
    one = synthetic("mnist", "c2", 0.01)
    two = pd.concat(
        [one.assign(original=0), one.assign(original=1, seed=one.seed + 3,
                                            accuracy_combined=one.accuracy_combined + 0.004)]
    )  # fmt: skip
    rep = results.compare_to_seed(two, "mnist", "c2")
    row = rep.differences.iloc[3]
    means = [
        two.query(
            f"metric == '{row.metric}' and step == {row.step} and original == {o}"
        ).accuracy_combined.mean()
        for o in (0, 1)
    ]
    expected = mean_ci(means)
    assert row.n_seeds == 2
    assert (row["mean"], row.ci_low, row.ci_high) == pytest.approx(
        (expected.mean, expected.low, expected.high)
    )


def test_other_budgets_are_matched_on_the_fraction_of_the_pool():
    # ten steps of 3000 on a pool of 30000 (the seed's: 2800 on 55998): no size in common
    fractions = np.linspace(0, 1, 11)
    table = synthetic("fashion", "c2", -0.02, fractions=fractions, pool=30000)
    rep = results.compare_to_seed(table, "fashion", "c2")
    assert rep.match == "fraction"
    np.testing.assert_allclose(rep.differences.difference, -0.02, atol=1e-12)
    np.testing.assert_allclose(rep.differences.seed_n_inputs, np.tile(fractions, 6) * 55998)
    np.testing.assert_allclose(rep.summary.mean_abs_difference, 0.02, atol=1e-12)
    # forcing size matching: only n_inputs 0 is a size the seed has
    sized = results.compare_to_seed(table, "fashion", "c2", match="size")
    assert sized.differences.seed_accuracy.notna().sum() == 6
    assert (sized.summary.n_budgets == 1).all()


def test_fraction_matching_never_extrapolates_below_the_seeds_first_set():
    # c1 has no step 0 in either study; 2 % of the pool is below the seed's first set (5 %)
    fractions = np.array([0.02, 0.25, 0.5, 0.75, 1.0])
    table = synthetic("mnist", "c1", 0.005, fractions=fractions, pool=40000)
    rep = results.compare_to_seed(table, "mnist", "c1")
    first = rep.differences[rep.differences.step == 1]
    assert first.seed_accuracy.isna().all() and first.difference.isna().all()
    assert first.seed_in_ci.isna().all()
    rest = rep.differences[rep.differences.step > 1]
    np.testing.assert_allclose(rest.difference, 0.005, atol=1e-12)
    assert (rep.summary.n_budgets == 4).all()


def test_a_plain_table_needs_only_metric_size_and_accuracy(tmp_path):
    full = synthetic("intel", "c3", 0.0)
    bare = full[full.seed == 0][["metric", "n_inputs", "accuracy_combined"]]
    rep = results.compare_to_seed(bare, "intel", "c3")
    d = rep.differences
    assert (d.n_seeds == 1).all() and d.ci_low.isna().all() and d.seed_in_ci.isna().all()
    assert list(d.step[d.metric == "lsa"]) == list(range(21))  # numbered from n_inputs
    np.testing.assert_allclose(d.difference, SPREAD[0], atol=1e-12)
    path = tmp_path / "curves.csv"
    full.to_csv(path, index=False)
    from_file = results.compare_to_seed(path, "intel")
    assert from_file.config == "c3" and from_file.source is None
    assert np.allclose(from_file.differences.difference, 0.0)


def test_a_dataset_without_reference_curves_is_a_one_line_error():
    table = synthetic("mnist", "c2", 0.0)
    message = r"gtsrb, intel, cifar10, mnist, fashion .*but got dataset='digits'"
    with pytest.raises(ConfigError, match=message):
        results.compare_to_seed(table, "digits", "c2")
    with pytest.raises(ConfigError, match=message):
        results.reference_curves("digits")
    with pytest.raises(ConfigError, match="dataset='cifar'"):  # the seed's name is not ours
        results.reference_curves("cifar")
    with pytest.raises(ConfigError, match="dataset must be given"):
        results.compare_to_seed(table, config="c2")


def test_bad_tables_and_options_are_one_line_errors():
    table = synthetic("mnist", "c2", 0.0)
    with pytest.raises(ConfigError, match="config must be given for a curves table"):
        results.compare_to_seed(table.drop(columns="config"), "mnist")
    both = pd.concat([table.assign(config="c2"), table.assign(config="c3")])
    with pytest.raises(ConfigError, match=r"2 configurations \(c2, c3\)"):
        results.compare_to_seed(both, "mnist")
    assert results.compare_to_seed(both, "mnist", "c3").config == "c3"
    with pytest.raises(ConfigError, match=r"one the curves hold \(c2, c3\), but got config='c1'"):
        results.compare_to_seed(both, "mnist", "c1")
    with pytest.raises(ConfigError, match="lacks accuracy_combined"):
        results.compare_to_seed(table.drop(columns="accuracy_combined"), "mnist", "c2")
    with pytest.raises(ConfigError, match="but got gini"):
        results.compare_to_seed(table.replace({"metric": {"deepgini": "gini"}}), "mnist", "c2")
    with pytest.raises(ConfigError, match="match must be one of auto, size, fraction"):
        results.compare_to_seed(table, "mnist", "c2", match="nearest")
    with pytest.raises(ConfigError, match="confidence must be in"):
        results.compare_to_seed(table, "mnist", "c2", confidence=1.0)
    with pytest.raises(ConfigError, match="config must be one of c1, c2, c3"):
        results.reference_curves("mnist", "c4")


def test_the_figure_overlays_ours_and_the_seeds_per_metric(tmp_path):
    rep = results.compare_to_seed(synthetic("gtsrb", "c2", 0.01), "gtsrb", "c2")
    fig = rep.figure()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 6
    for ax, metric in zip(shown, rep.summary.metric, strict=True):
        solid, dashed = ax.get_lines()
        assert (solid.get_linestyle(), dashed.get_linestyle()) == ("-", "--")
        assert len(solid.get_xdata()) == 22 and len(dashed.get_xdata()) == 22
        assert len(ax.collections) == 1  # the interval band
        assert ax.get_title().startswith(STYLES[metric][0])
    written = rep.write(tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == [
        "replication_gtsrb_c2.png",
        "replication_gtsrb_c2.svg",
        "replication_gtsrb_c2_differences.csv",
        "replication_gtsrb_c2_summary.csv",
    ]
    assert all(p.stat().st_size > 0 for p in written)
    assert written[0].read_bytes()[:4] == b"\x89PNG"
    back = pd.read_csv(written[2])
    np.testing.assert_allclose(back.difference, 0.01, atol=1e-12)


def test_the_figure_of_two_metrics_hides_the_spare_panel():
    table = synthetic("intel", "c1", 0.0)
    rep = results.compare_to_seed(table[table.metric.isin(["lsa", "random"])], "intel", "c1")
    assert [ax.get_visible() for ax in rep.figure().axes] == [True, True]
    assert rep.x == "n_inputs"


def test_a_retrain_run_is_read_through_its_run_id(mlflow_store, tmp_path):
    table = synthetic("cifar10", "c3", 0.03)
    sizes = sorted(set(table.n_inputs) - {0})
    (tmp_path / "tables").mkdir()
    table.drop(columns=["config", "accuracy_clean"]).to_csv(
        tmp_path / "tables" / "curves.csv", index=False
    )
    with mlflow.start_run() as run:
        mlflow.set_tags({"robust.stage": "retrain", "robust.dataset": "cifar10"})
        mlflow.log_params(
            {"config": "c3", "budgets": "seed", "budget_sizes": json.dumps(sizes), "seeds": 3}
        )
        mlflow.log_artifact(str(tmp_path / "tables" / "curves.csv"), "tables")
    rep = results.compare_to_seed(run.info.run_id)
    assert (rep.dataset, rep.config, rep.match) == ("cifar10", "c3", "size")
    assert rep.source == run.info.run_id
    np.testing.assert_allclose(rep.differences.difference, 0.03, atol=1e-12)
    np.testing.assert_allclose(rep.summary.mean_abs_difference, 0.03, atol=1e-12)
    with pytest.raises(ConfigError, match="gtsrb, intel, cifar10, mnist, fashion"):
        results.compare_to_seed(run.info.run_id, "digits")
    with pytest.raises(ConfigError, match="no run with id"):
        results.compare_to_seed("0" * 32)
