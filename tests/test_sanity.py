"""The perturbation battery: every scorer moves as it declares, on synthetic and on real anime clips,
and a scorer cannot pass without measuring (a value stuck at its bound is uninformative, not a pass)."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import entry_points

import cv2
import numpy as np
import pytest

from anibench.engine import resolve_scorers
from anibench.runspec import PluginSpec
from anibench.sanity import (
    JITTER_PX, NO_CLAIM, PERTURBATIONS, PerturbationCheck, battery_inputs, expectations_for, informative,
    moved_as_declared, required_informative, run_battery,
)
from anibench.scoring import SCORERS, Expect, Input, Scorer, ScoreInput
from anibench.suites import load_suite
from anibench.video import Video

from conftest import moving_square

# anibench's own scorers (its entry points); other tests may register more in the session's registry.
ALL_BUILTIN = sorted(ep.name for ep in entry_points(group="anibench.scorers"))
# Model-based scorers whose weights this machine lacks (CI has none) are reported, not battery-tested.
BUILTIN = [name for name in ALL_BUILTIN if SCORERS.get(name).unavailable_reason() is None]
MASK_SCORERS = {name for name in BUILTIN if Input.MASK in SCORERS.get(name).requires}


@pytest.fixture(scope="module")
def every_scorer():
    scorers, skipped = resolve_scorers([PluginSpec(name) for name in BUILTIN])
    assert not skipped
    return scorers


def test_unavailable_scorers_are_reported_with_what_is_missing():
    """Without weights a model-based scorer is unavailable, with the file and the command that provides it."""
    from anibench.engine import resolve_scorers as resolve_available

    _, skipped = resolve_available(None)
    for name in set(ALL_BUILTIN) - set(BUILTIN):
        reason = skipped[name]
        if name == "anime_reward.trained":  # a head the user trained, chosen with head=<weights entry>
            assert "head=" in reason, reason
            continue
        assert "anibench weights import" in reason, (name, reason)
        # The combined AnimeReward score loads no model itself: its heads do, and their reasons are its own.
        assert SCORERS.get(name).families or name == "anime_reward.combined", name


@pytest.fixture(scope="module")
def smoke_samples():
    return battery_inputs(load_suite({"name": "smoke", "per_action": 1}))


def _explain(report) -> str:
    lines = [f"{c.scorer}/{c.perturbation}: {c.moved_as_declared}/{c.informative} informative of {c.cases}, "
             f"errors={c.errors} misses={c.misses[:3]}" for c in report.failures()]
    lines += [f"{name}: {report.scorer_status(name)}" for name in report.scorers()
              if report.scorer_status(name) not in ("pass", "too few cases")]
    return "; ".join(lines)


def test_every_scorer_passes_on_the_smoke_suite(every_scorer, smoke_samples):
    assert len(smoke_samples) == 18
    report = run_battery(every_scorer, smoke_samples)
    assert report.passed, _explain(report)
    # every registered scorer was exercised and measured: an up/down check passed on informative cases
    assert {name: report.scorer_status(name) for name in report.scorers()} == {n: "pass" for n in BUILTIN}
    # the counts are reported: clips already static do not inform "freeze makes it static"
    freeze = next(c for c in report.checks if (c.scorer, c.perturbation) == ("static_clip", "freeze"))
    assert freeze.cases == 18 and freeze.informative + len(freeze.uninformative) == 18
    assert freeze.moved_as_declared == freeze.informative >= required_informative(18)
    # clips without cuts cannot show "freeze removes cuts": inconclusive, not a pass
    cuts = next(c for c in report.checks if (c.scorer, c.perturbation) == ("scene_cuts", "freeze"))
    assert cuts.informative == 0 and report.status(cuts) == "inconclusive"


def test_every_scorer_passes_on_the_real_anisora_clips(every_scorer, samples_dir):
    samples = battery_inputs(load_suite(f"anisora:{samples_dir}"))
    assert {s.case_id for s in samples} == {"cartoon_films_da_dou_1", "cartoon_films_shuo_hua_26",
                                             "cartoon_films_tui_la_13", "case_11_seed666666"}
    report = run_battery(every_scorer, samples)
    assert report.passed, _explain(report)
    statuses = {name: report.scorer_status(name) for name in report.scorers()}
    # one clip has a motion mask: the mask scorers cannot be measured here, everything else is
    assert statuses == {n: "too few cases" if n in MASK_SCORERS else "pass" for n in BUILTIN}


# --------------------------------------------------------------------------- broken scorers


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
    expectations = {"freeze": Expect.DOWN, "shake": Expect.UP}

    def compute(self, sample):
        return self.result(0.5)


class AlwaysStatic(Scorer):
    """A broken binary metric stuck at its upper bound, claiming only moves toward it: never measures."""

    name = "always_static"
    expectations = {"freeze": Expect.UP, "hold_twos": Expect.UP}

    def compute(self, sample):
        return self.result(1.0)


class NeverCuts(Scorer):
    """A broken cut counter stuck at 0, claiming "freeze removes cuts" (the old battery passed it 100 %)."""

    name = "never_cuts"
    upper = float("inf")
    expectations = {"freeze": Expect.DOWN, "reverse": Expect.NONE}

    def compute(self, sample):
        return self.result(0.0)


class Crashes(Scorer):
    """A broken metric that raises on every clip: no case is scored, and that is a failure, not "too few cases"."""

    name = "crashes"
    expectations = {"freeze": Expect.DOWN}

    def compute(self, sample):
        raise ValueError("broken")


class FirstFrameOnly(Scorer):
    """A broken timing metric: brightness of the first frame, claiming to see holds and stutter."""

    name = "first_frame_only"
    expectations = {"hold_twos": Expect.UP, "stutter": Expect.UP}

    def compute(self, sample):
        return self.result(sample.video.frames[0].mean() / 255)


@pytest.mark.parametrize("broken,status", [
    (BackwardsFlicker, "fail"), (Constant, "fail"), (FirstFrameOnly, "fail"), (Crashes, "fail"),
    (AlwaysStatic, "unmeasured"), (NeverCuts, "unmeasured"),
])
def test_the_battery_catches_broken_scorers(broken, status, smoke_samples):
    report = run_battery([broken()], smoke_samples[:6])
    assert not report.passed and report.scorer_status(broken.name) == status
    if status == "unmeasured":  # stuck at the bound: every directional check is inconclusive, none passes
        directional = [c for c in report.checks if c.expected is not Expect.NONE]
        assert directional and all(c.informative == 0 and report.status(c) == "inconclusive" for c in directional)
        assert not report.failures()


def test_bound_cases_are_uninformative_not_moves():
    scorer = SCORERS.get("dynamic_degree")()
    assert not informative(0.0, 0.0, Expect.DOWN, scorer)  # at the lower bound and stayed: shows nothing
    assert not informative(1.0, 1.0, Expect.UP, scorer)
    assert informative(0.0, 1.0, Expect.DOWN, scorer)  # left the bound the wrong way: an informative miss
    assert informative(1.0, 1.0, Expect.DOWN, scorer) and not moved_as_declared(1.0, 1.0, Expect.DOWN, scorer)
    assert not informative(0.3, 0.7, Expect.UP, scorer, visible=False)  # the clip did not change
    assert moved_as_declared(1.0, 0.0, Expect.DOWN, scorer) and not moved_as_declared(0.0, 0.0, Expect.DOWN, scorer)
    assert moved_as_declared(0.3, 0.3, Expect.NONE, scorer) and not moved_as_declared(0.3, 0.4, Expect.NONE, scorer)


def test_a_check_needs_enough_informative_cases():
    assert required_informative(4) == 3 and required_informative(18) == 5 and required_informative(40) == 10
    check = PerturbationCheck("s", "freeze", Expect.DOWN, cases=18, informative=4, moved_as_declared=4)
    assert check.status() == "inconclusive" and not check.passed()
    check.informative = check.moved_as_declared = 5
    assert check.status() == "pass"
    check.moved_as_declared = 3
    assert check.status() == "fail"
    check.errors = 1
    assert PerturbationCheck("s", "freeze", Expect.DOWN, cases=0, errors=1).status() == "fail"


# --------------------------------------------------------------------------- declarations


TIMING_AND_PICTURE = {"hold_twos", "stutter", "reencode", "downscale", "letterbox", "channel_swap", "speed_up",
                      "jitter"}
# Scorers whose every reaction is declared; the keyframe and mask scorers declare the perturbations above.
FULLY_DECLARED = {"temporal_flickering", "dynamic_degree", "motion_smoothness", "static_clip", "scene_cuts",
                  "animation_cadence", "held_frames", "judder", "black_borders"}


def test_every_scorer_declares_its_reaction_to_every_perturbation():
    assert TIMING_AND_PICTURE <= set(PERTURBATIONS)
    for name in BUILTIN:
        declared = expectations_for(SCORERS.get(name)())
        assert set(declared) <= set(PERTURBATIONS), name
        required = set(PERTURBATIONS) if name in FULLY_DECLARED else TIMING_AND_PICTURE
        assert required <= set(declared), (name, required - set(declared))
        assert all(v == NO_CLAIM or isinstance(v, Expect) for v in declared.values()), name
        assert any(v in (Expect.UP, Expect.DOWN) for v in declared.values()), name


# A NO_CLAIM entry, or a line of perturbation names continuing one.
CONTINUATION = re.compile(r'NO_CLAIM|^\s+"[a-z_]+",?\s*$|^\s+"[a-z_]+", ')


def test_every_no_claim_says_why():
    """Each NO_CLAIM entry is preceded by a comment (entries sharing a reason sit right below it)."""
    for name in BUILTIN:
        lines = inspect.getsource(inspect.getmodule(SCORERS.get(name))).splitlines()
        for i, line in enumerate(lines):
            if "NO_CLAIM" not in line or line.lstrip().startswith(("from ", "import ")):
                continue
            j = i - 1
            while j >= 0 and "#" not in lines[j] and CONTINUATION.search(lines[j]):
                j -= 1
            assert j >= 0 and lines[j].lstrip().startswith("#"), f"{name}: NO_CLAIM without a reason: {line.strip()}"


# --------------------------------------------------------------------------- the perturbations


def _sample(num_frames: int = 9) -> ScoreInput:
    return ScoreInput("p", Video(moving_square(num_frames=num_frames, step=3.0), 16.0))


def test_timing_perturbations():
    sample = _sample(9)
    frames = sample.video.frames
    held = PERTURBATIONS["hold_twos"](sample, sample).video.frames
    assert all(np.array_equal(held[i], frames[2 * (i // 2)]) for i in range(9))
    stuttered = PERTURBATIONS["stutter"](_sample(40), sample).video.frames
    repeats = [np.array_equal(a, b) for a, b in zip(stuttered[:-1], stuttered[1:])]
    assert 5 <= sum(repeats) <= 15 and np.array_equal(stuttered[0], _sample(40).video.frames[0])
    assert np.array_equal(stuttered, PERTURBATIONS["stutter"](_sample(40), sample).video.frames)  # fixed seed
    fast = PERTURBATIONS["speed_up"](sample, sample).video
    assert fast.num_frames == 5 and fast.fps == 16.0 and np.array_equal(fast.frames, frames[::2])


def test_picture_perturbations():
    sample = _sample(5)
    frames = sample.video.frames
    boxed = PERTURBATIONS["letterbox"](sample, sample).video.frames
    assert (boxed[:, :8] == 0).all() and (boxed[:, -8:] == 0).all() and np.array_equal(boxed[:, 8:-8], frames[:, 8:-8])
    assert np.array_equal(PERTURBATIONS["channel_swap"](sample, sample).video.frames, frames[..., ::-1])
    small = PERTURBATIONS["downscale"](sample, sample).video.frames
    assert small.shape == frames.shape and 0 < np.abs(small.astype(int) - frames).mean() < 10
    coded = PERTURBATIONS["reencode"](sample, sample).video
    assert coded.frames.shape == frames.shape and coded.fps == 16.0
    assert 0 < np.abs(coded.frames.astype(int) - frames).mean() < 20  # a real lossy round trip
    jittered = PERTURBATIONS["jitter"](sample, sample).video.frames
    # each frame translated by its own sub-pixel offset, at most JITTER_PX per axis (phase correlation finds it)
    gray = lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32)  # noqa: E731
    shifts = np.array([cv2.phaseCorrelate(gray(a), gray(b))[0] for a, b in zip(frames, jittered)])
    assert (np.abs(shifts) <= JITTER_PX + 0.2).all() and len({tuple(np.round(s, 1)) for s in shifts}) == len(shifts)
    assert (np.abs(shifts - np.round(shifts)) > 0.05).any()  # not whole pixels, unlike shake
