"""Meta-evaluation metrics: scipy's statistics on hand cases, pairwise accuracy with ties, the bootstrap
intervals (seeded, degenerate resamples dropped, coverage near the nominal level) and inter-rater agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from anibench.reward import metaeval


def test_spearman_and_kendall_are_scipys_with_ties():
    pred = [0.1, 0.4, 0.4, 0.9, 0.2, 0.7]
    human = [1, 3, 2, 5, 1, 4]
    assert metaeval.spearman(pred, human) == pytest.approx(stats.spearmanr(pred, human).statistic)
    assert metaeval.kendall(pred, human) == pytest.approx(stats.kendalltau(pred, human).statistic)
    # hand case: ranks pred (1, 2, 3), human (1, 3, 2): rho = 1 - 6*2/(3*8) = 0.5; tau = (2 - 1)/3
    assert metaeval.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert metaeval.kendall([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert math.isnan(metaeval.spearman([1, 1, 1], [1, 2, 3]))  # constant input: undefined, no warning raised


def test_pairwise_accuracy_hand_cases():
    assert metaeval.pairwise_accuracy([1, 2, 3], [1, 2, 3]) == (1.0, 3)
    assert metaeval.pairwise_accuracy([3, 2, 1], [1, 2, 3]) == (0.0, 3)
    assert metaeval.pairwise_accuracy([5, 5, 5], [1, 2, 3]) == (0.5, 3)  # reward ties count 1/2: chance
    # human ties are left out: pairs (0,2) wrong and (1,2) right, (0,1) tied for the humans
    assert metaeval.pairwise_accuracy([3, 1, 2], [1, 1, 2]) == (0.5, 2)
    value, pairs = metaeval.pairwise_accuracy([1, 2], [4, 4])
    assert math.isnan(value) and pairs == 0


def test_correlate_reports_every_metric_and_refuses_tiny_sets():
    rng = np.random.default_rng(0)
    human = rng.integers(1, 6, 30).astype(float)
    pred = human + rng.normal(0, 1.0, 30)
    out = metaeval.correlate(pred, human, n_boot=300, seed=1)
    for metric in metaeval.METRICS:
        cell = out[metric]
        assert cell["ci"]["low"] <= cell["value"] <= cell["ci"]["high"]
        assert cell["ci"]["n_boot"] == 300 and cell["ci"]["n_boot_valid"] == 300
    assert out["n_videos"] == 30 and out["n_pairs"] == metaeval.pairwise_accuracy(pred, human)[1]
    assert metaeval.correlate(pred, human, n_boot=300, seed=1) == out  # seeded
    tiny = metaeval.correlate([1, 2], [1, 2])
    assert tiny["spearman"]["value"] is None and "fewer than 3" in tiny["note"]


def test_bootstrap_matches_a_direct_loop_and_drops_degenerate_resamples():
    pred = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    human = np.array([1.0, 3.0, 2.0, 5.0, 3.0])
    ci = metaeval.bootstrap_ci(pred, human, "spearman", n_boot=500, seed=4)
    draws = np.random.default_rng(4).integers(0, 5, size=(500, 5))
    direct = np.array([metaeval.spearman(pred[d], human[d]) for d in draws])
    direct = direct[np.isfinite(direct)]
    assert ci["n_boot_valid"] == len(direct) < 500  # some resamples repeat one video: undefined, dropped
    assert ci["low"] == pytest.approx(np.percentile(direct, 2.5)) and ci["high"] == pytest.approx(np.percentile(direct, 97.5))


def test_bootstrap_interval_covers_the_true_correlation_near_the_nominal_rate():
    """Bivariate normal samples with Pearson r = 0.5: Spearman's population value is (6/pi) asin(r/2)."""
    truth = 6 / np.pi * np.arcsin(0.25)
    rng = np.random.default_rng(11)
    covered = 0
    reps = 80
    for rep in range(reps):
        x = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=60)
        ci = metaeval.bootstrap_ci(x[:, 0], x[:, 1], "spearman", n_boot=300, seed=rep)
        covered += ci["low"] <= truth <= ci["high"]
    assert 0.85 <= covered / reps <= 1.0


def test_rater_agreement_krippendorff_ordinal_and_pairwise_spearman():
    import krippendorff  # a core dependency (pure Python + numpy)

    ratings = {  # video -> rater -> rating; one rating missing, one anonymous row ignored
        "v1": {"a": 1, "b": 1, "c": 2}, "v2": {"a": 2, "b": 3, "c": 2}, "v3": {"a": 4, "b": 4},
        "v4": {"a": 5, "b": 4, "c": 5, None: 1}, "v5": {"a": 3, "b": 2, "c": 3},
    }
    out = metaeval.rater_agreement(ratings)
    matrix = np.array([[1, 2, 4, 5, 3], [1, 3, 4, 4, 2], [2, 2, np.nan, 5, 3]], dtype=float)
    assert out["krippendorff_alpha_ordinal"] == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"))
    rhos = [stats.spearmanr([1, 2, 4, 5, 3], [1, 3, 4, 4, 2]).statistic,
            stats.spearmanr([1, 2, 5, 3], [2, 2, 5, 3]).statistic,
            stats.spearmanr([1, 3, 4, 2], [2, 2, 5, 3]).statistic]
    assert out["mean_pairwise_spearman"] == pytest.approx(np.mean(rhos)) and out["rater_pairs"] == 3
    assert out["raters"] == 3 and out["ratings"] == 14
    perfect = metaeval.rater_agreement({f"v{i}": {"a": i % 5 + 1, "b": i % 5 + 1} for i in range(6)})
    assert perfect["krippendorff_alpha_ordinal"] == pytest.approx(1.0)
    assert metaeval.rater_agreement({"v1": {"a": 3}, "v2": {None: 2}}) is None  # one named rater: no agreement
