"""Meta-evaluation: how well a reward agrees with human ratings, with bootstrap confidence intervals.

Per dimension, over the evaluated videos (one prediction and one human target per video — the mean
of its raters):

* **Spearman's ρ** — ``scipy.stats.spearmanr`` (average ranks for ties);
* **Kendall's τ-b** — ``scipy.stats.kendalltau`` (τ-b: corrected for ties on either side);
* **pairwise accuracy** — over every pair of videos whose human targets differ (pairs the humans
  tied are left out: there is no order to agree with), the share the reward orders the same way;
  a pair the reward ties counts ½ (a coin flip), so a constant reward scores 0.5, chance level.
  ``n_pairs`` is reported.

Confidence intervals: percentile bootstrap over videos (videos drawn with replacement, ``n_boot``
resamples from ``numpy.random.default_rng(seed)``, the ``(1 − level)/2`` and ``(1 + level)/2``
percentiles). A resample whose statistic is undefined (all predictions or all targets equal, no
untied pair) is dropped and the number kept is reported as ``n_boot_valid``; the interval is null
when fewer than half survive. The loop is written out rather than ``scipy.stats.bootstrap`` so
that degenerate resamples are dropped and counted instead of turning the whole interval into NaN;
the statistics themselves are scipy's.

Inter-rater agreement (when a dimension has rater ids and ≥ 2 raters): **Krippendorff's α, ordinal
level** (the ``krippendorff`` package; raters × videos, missing ratings allowed) and the **mean
pairwise Spearman ρ** between raters over the videos both rated (pairs sharing ≥ 3 videos,
``scipy.stats.spearmanr``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats

METRICS = ("spearman", "kendall", "pairwise_accuracy")
MIN_VIDEOS = 3


def _quiet(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: scipy warns and returns nan, which we report
            return function(*args, **kwargs)

    return wrapped


@_quiet
def spearman(pred: Sequence[float], human: Sequence[float]) -> float:
    return float(stats.spearmanr(pred, human).statistic)


@_quiet
def kendall(pred: Sequence[float], human: Sequence[float]) -> float:
    return float(stats.kendalltau(pred, human, variant="b").statistic)


def pairwise_accuracy(pred: Sequence[float], human: Sequence[float]) -> tuple[float, int]:
    """(accuracy, number of pairs with different human targets); reward ties count ½; nan with no pair."""
    p = np.asarray(pred, dtype=np.float64)
    h = np.asarray(human, dtype=np.float64)
    i, j = np.triu_indices(len(h), k=1)
    human_sign = np.sign(h[i] - h[j])
    keep = human_sign != 0
    if not keep.any():
        return math.nan, 0
    agree = np.sign(p[i] - p[j])[keep] * human_sign[keep]
    score = np.where(agree > 0, 1.0, np.where(agree == 0, 0.5, 0.0))
    return float(score.mean()), int(keep.sum())


def _pairwise(pred: Sequence[float], human: Sequence[float]) -> float:
    return pairwise_accuracy(pred, human)[0]


STATISTICS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "spearman": spearman, "kendall": kendall, "pairwise_accuracy": _pairwise,
}


def _spearman_rows(pred: np.ndarray, human: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair (vectorised over bootstrap resamples); nan for constant rows."""
    rp = stats.rankdata(pred, axis=1)
    rh = stats.rankdata(human, axis=1)
    rp -= rp.mean(1, keepdims=True)
    rh -= rh.mean(1, keepdims=True)
    denom = np.sqrt((rp**2).sum(1) * (rh**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rp * rh).sum(1) / np.where(denom > 0, denom, 1.0), np.nan)


def bootstrap_ci(pred: Sequence[float], human: Sequence[float], metric: str, *, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Percentile bootstrap interval of ``metric`` over videos (see the module docstring)."""
    p = np.asarray(pred, dtype=np.float64)
    h = np.asarray(human, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(p), size=(n_boot, len(p)))
    if metric == "spearman":
        values = _spearman_rows(p[draws], h[draws])
    else:
        statistic = STATISTICS[metric]
        values = np.array([statistic(p[d], h[d]) for d in draws])
    values = values[np.isfinite(values)]
    out: dict[str, Any] = {"low": None, "high": None, "n_boot": n_boot, "n_boot_valid": int(len(values)),
                           "level": level, "method": "percentile bootstrap over videos"}
    if n_boot and len(values) >= max(1, n_boot // 2):
        low, high = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
        out.update(low=float(low), high=float(high))
    return out


def correlate(pred: Sequence[float], human: Sequence[float], *, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
    """Every metric of :data:`METRICS` with its bootstrap interval; ``n_videos``, ``n_pairs``."""
    pred = np.asarray(pred, dtype=np.float64)
    human = np.asarray(human, dtype=np.float64)
    out: dict[str, Any] = {"n_videos": int(len(pred))}
    if len(pred) < MIN_VIDEOS:
        out["note"] = f"fewer than {MIN_VIDEOS} videos: no metric"
        for metric in METRICS:
            out[metric] = {"value": None, "ci": None}
        out["n_pairs"] = 0
        return out
    for offset, metric in enumerate(METRICS):
        value = STATISTICS[metric](pred, human)
        out[metric] = {"value": None if not math.isfinite(value) else float(value),
                       "ci": bootstrap_ci(pred, human, metric, n_boot=n_boot, seed=seed + offset, level=level)}
    out["n_pairs"] = pairwise_accuracy(pred, human)[1]
    return out


def rater_agreement(ratings: Mapping[str, Mapping[str | None, float]]) -> dict[str, Any] | None:
    """Agreement between raters on one dimension: ``{video: {rater: rating}}`` → α and mean pairwise ρ.

    None when fewer than two named raters rated this dimension (anonymous rows are left out).
    """
    raters = sorted({r for per in ratings.values() for r in per if r is not None})
    if len(raters) < 2:
        return None
    videos = sorted(ratings)
    matrix = np.full((len(raters), len(videos)), np.nan)
    for j, video in enumerate(videos):
        for i, rater in enumerate(raters):
            value = ratings[video].get(rater)
            if value is not None:
                matrix[i, j] = value
    out: dict[str, Any] = {"raters": len(raters), "videos": len(videos),
                           "ratings": int(np.isfinite(matrix).sum())}
    try:
        import krippendorff
    except ImportError:
        out["krippendorff_alpha_ordinal"] = None
        out["krippendorff_note"] = "the krippendorff package is not installed (pip install krippendorff)"
    else:
        pairable = np.isfinite(matrix).sum(0) >= 2
        values = np.unique(matrix[np.isfinite(matrix)])
        if pairable.sum() >= 1 and len(values) >= 2:
            alpha = krippendorff.alpha(reliability_data=matrix[:, pairable], level_of_measurement="ordinal")
            out["krippendorff_alpha_ordinal"] = float(alpha)
        else:
            out["krippendorff_alpha_ordinal"] = None
            out["krippendorff_note"] = "no video rated by two raters with differing values"
    rhos = []
    for a, b in itertools.combinations(range(len(raters)), 2):
        both = np.isfinite(matrix[a]) & np.isfinite(matrix[b])
        if both.sum() >= MIN_VIDEOS:
            rho = spearman(matrix[a, both], matrix[b, both])
            if math.isfinite(rho):
                rhos.append(rho)
    out["mean_pairwise_spearman"] = float(np.mean(rhos)) if rhos else None
    out["rater_pairs"] = len(rhos)
    return out
