"""A pytest plugin: quality regression tests in your own CI.

Installed with anibench (entry point ``pytest11``), it provides the fixture
``anibench_gate``, the same check as ``anibench gate``::

    def test_new_checkpoint_keeps_quality(anibench_gate):
        anibench_gate("runs/baseline", "runs/candidate", max_drop={"*": 0.01, "guide_psnr": 0.5})

It fails the test with every regression spelled out, and returns the
:class:`~anibench.leaderboard.compare.GateResult` when the candidate passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import pytest


def check_quality(
    baseline: str | Path,
    candidate: str | Path,
    *,
    max_drop: Mapping[str, float] | float | None = None,
    baseline_model: str | None = None,
    candidate_model: str | None = None,
    alpha: float = 0.05,
    per_condition: bool = False,
    allow_missing: bool = False,
    scorers: list[str] | None = None,
):
    """Run the quality gate; raise ``AssertionError`` listing the regressions when it fails."""
    from anibench.leaderboard.compare import compare_runs, gate

    comparisons = compare_runs(baseline, candidate, model_a=baseline_model, model_b=candidate_model,
                               per_condition=per_condition, scorers=scorers, alpha=alpha)
    result = gate(comparisons, max_drop, alpha=alpha, per_condition=per_condition, allow_missing=allow_missing)
    if not result.passed:
        raise AssertionError(result.report())
    return result


@pytest.fixture
def anibench_gate() -> Callable[..., object]:
    """``anibench_gate(baseline_run, candidate_run, max_drop=..., ...)``: see :func:`check_quality`."""
    return check_quality
