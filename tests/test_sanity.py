"""The perturbation battery: every scorer moves as it declares, on synthetic and on real anime clips."""

from __future__ import annotations

import pytest

from anibench.engine import resolve_scorers
from anibench.sanity import PERTURBATIONS, battery_inputs, moved_as_declared, run_battery
from anibench.scoring import SCORERS, Expect, Scorer
from anibench.suites import load_suite


@pytest.fixture(scope="module")
def every_scorer():
    scorers, skipped = resolve_scorers(None)
    assert not skipped
    return scorers


def _explain(report) -> str:
    return "; ".join(
        f"{c.scorer}/{c.perturbation}: {c.moved_as_declared}/{c.cases} errors={c.errors} misses={c.misses[:2]}"
        for c in report.failures()
    )


def test_every_scorer_passes_on_the_smoke_suite(every_scorer):
    samples = battery_inputs(load_suite({"name": "smoke", "per_action": 1}))
    assert len(samples) == 18
    report = run_battery(every_scorer, samples)
    assert report.passed, _explain(report)
    tested = {c.scorer for c in report.checks if c.cases}
    assert tested == set(SCORERS.names())  # every registered scorer was exercised, mask precision included


def test_every_scorer_passes_on_the_real_anisora_clips(every_scorer, samples_dir):
    samples = battery_inputs(load_suite(f"anisora:{samples_dir}"))
    assert {s.case_id for s in samples} == {"cartoon_films_da_dou_1", "cartoon_films_shuo_hua_26",
                                             "cartoon_films_tui_la_13", "case_11_seed666666"}
    report = run_battery(every_scorer, samples)
    assert report.passed, _explain(report)
    assert {c.scorer for c in report.checks if c.cases} == set(SCORERS.names())


class BackwardsFlicker(Scorer):
    """A broken metric: mean frame difference / 255 (rises with flicker), claiming the opposite."""

    name = "backwards_flicker"
    expectations = SCORERS.get("temporal_flickering").expectations

    def compute(self, sample):
        frames = sample.video.frames.astype(float)
        return self.result(abs(frames[1:] - frames[:-1]).mean() / 255)


class Constant(Scorer):
    """A broken metric that never moves."""

    name = "constant"
    expectations = SCORERS.get("dynamic_degree").expectations

    def compute(self, sample):
        return self.result(0.5)


@pytest.mark.parametrize("broken", [BackwardsFlicker, Constant])
def test_the_battery_catches_broken_scorers(broken):
    samples = battery_inputs(load_suite({"name": "smoke", "per_action": 1}), limit=6)
    report = run_battery([broken()], samples)
    assert not report.passed and report.failures()


def test_moves_at_the_bound_count_as_declared():
    scorer = SCORERS.get("dynamic_degree")()
    assert moved_as_declared(1.0, 0.0, Expect.DOWN, scorer)
    assert moved_as_declared(0.0, 0.0, Expect.DOWN, scorer)  # already at the lower bound
    assert not moved_as_declared(1.0, 1.0, Expect.DOWN, scorer)
    assert not moved_as_declared(0.0, 0.0, Expect.UP, scorer)
    assert moved_as_declared(0.3, 0.3, Expect.NONE, scorer) and not moved_as_declared(0.3, 0.4, Expect.NONE, scorer)


def test_every_declared_perturbation_exists():
    for name in SCORERS.names():
        assert set(SCORERS.get(name).expectations) <= set(PERTURBATIONS), name
