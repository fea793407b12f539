"""Statistics for tables and comparisons: bootstrap intervals, paired tests, Holm, tied ranks.

* :func:`bootstrap_ci` — percentile bootstrap of a mean over cases (Efron & Tibshirani,
  1993), resampling cases with replacement; seeded, so a table is reproducible.
* :func:`paired_comparison` — two models on their shared cases: mean difference, its
  paired-bootstrap 95 % interval, and the Wilcoxon signed-rank p-value (SciPy).
* :func:`holm` — Holm–Bonferroni adjusted p-values (Holm, 1979) for a family of tests.
* :func:`tied_ranks` — rank = 1 + number of models significantly better, so models
  whose difference is not significant share a rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 1000
DEFAULT_ALPHA = 0.05
DEFAULT_SEED = 0


def bootstrap_ci(
    values: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, alpha: float = DEFAULT_ALPHA, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    """``b − a`` over shared cases: mean, bootstrap interval, Wilcoxon p-value, count."""

    delta: float
    low: float
    high: float
    p_value: float
    n: int


def paired_comparison(
    a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, alpha: float = DEFAULT_ALPHA,
    seed: int = DEFAULT_SEED,
) -> PairedResult:
    """Compare paired samples ``a`` and ``b`` (same cases, same order); ``resamples=0`` skips the interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = b - a
    if diff.size == 0:
        return PairedResult(math.nan, math.nan, math.nan, math.nan, 0)
    low, high = bootstrap_ci(diff, resamples=resamples, alpha=alpha, seed=seed) if resamples else (math.nan, math.nan)
    if diff.size < 2 or np.all(diff == 0):
        p_value = 1.0
    else:
        p_value = float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)
    return PairedResult(float(diff.mean()), low, high, p_value, int(diff.size))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order; NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(~np.isnan(p))
    adjusted = np.full(p.shape, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def tied_ranks(
    models: Sequence[str],
    values: Mapping[str, float],
    higher_is_better: bool,
    significantly_better: Callable[[str, str], bool],
) -> dict[str, int]:
    """Rank = 1 + the number of models significantly better than this one (ties where not significant).

    ``significantly_better(x, y)`` says whether ``x`` beats ``y`` significantly.
    Models without a value get no rank.
    """
    ranked = [m for m in models if values.get(m) is not None and not math.isnan(values[m])]
    return {m: 1 + sum(1 for other in ranked if other != m and significantly_better(other, m)) for m in ranked}
