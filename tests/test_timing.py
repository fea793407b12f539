"""Anime timing scorers (cadence, held frames, judder) and black borders, on clips whose timing is known."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.scoring import ScoreInput, create_scorer
from anibench.scorers import black_borders, timing
from anibench.smoke.render import CAMERA_ACTIONS
from anibench.suites import load_suite
from anibench.suites.smoke import _params, plan
from anibench.video import Video

from conftest import moving_square

TIMING = ("animation_cadence", "held_frames", "judder")


def sample_of(frames: np.ndarray, fps: float = 16.0) -> ScoreInput:
    return ScoreInput("timing", Video(np.ascontiguousarray(frames), fps))


def encoded(frames: np.ndarray, tmp_path, crf: int) -> np.ndarray:
    """Frames after a real H.264 encode and decode (held frames come back with codec noise)."""
    return Video.read(Video(frames, 16.0).write(tmp_path / f"crf{crf}.mp4", crf=crf)).frames


def on(cadence: int, num_frames: int = 33, step: float = 2.0) -> np.ndarray:
    """A square sliding ``step`` px per frame, each drawing held for ``cadence`` frames."""
    frames = moving_square(num_frames=num_frames, step=step)
    return frames[(np.arange(num_frames) // cadence) * cadence]


def scores(frames: np.ndarray) -> dict[str, float]:
    sample = sample_of(frames)
    return {name: create_scorer(name).score(sample).value for name in TIMING}


# --------------------------------------------------------------------------- the rules


def test_pair_change_is_the_high_percentile_of_the_averaged_difference():
    a = np.zeros((100, 100), np.uint8)
    assert timing.pair_change(a, a) == 0.0
    b = a.copy()
    b[40:50, 40:50] = 90  # 1 % of the pixels change by 90: the 99.9th percentile sees them
    assert timing.pair_change(a, b) == pytest.approx(90.0)
    c = a.copy()
    c[50, 50] = 90  # one pixel: averaged over 3×3 it is 10, and 9 pixels are not 0.1 % of 10 000
    assert timing.pair_change(a, c) == 0.0


def test_repeat_threshold_follows_the_noise_floor_between_floor_and_ceiling():
    assert timing.repeat_threshold(np.array([0.5, 0.6, 40.0, 50.0])) == (4.0, pytest.approx(0.55))  # clean: floor 4
    assert timing.repeat_threshold(np.array([1.2, 1.3, 1.4, 60.0])) == (pytest.approx(6.5), pytest.approx(1.3))  # 5ν
    assert timing.repeat_threshold(np.array([2.0, 3.0, 7.0, 40.0])) == (8.0, 3.0)  # 5ν = 15, capped at 8
    assert timing.repeat_threshold(np.array([12.0, 40.0])) == (4.0, None)  # no quiet pair: near-exact repeats only


def test_runs_cadence_and_judder_rules():
    assert timing.hold_runs([False, True, False, True, True]).tolist() == [1, 2, 3]
    assert timing.hold_runs([]).tolist() == [1]
    assert timing.cadence_of(np.array([2] * 24 + [1])) == 2
    # frames vote for their run's length: 1, 2, 2, 2, 2, 3, 3, 3 → lower median 2
    assert timing.cadence_of(np.array([1, 2, 2, 3])) == 2
    assert timing.cadence_of(np.array([49])) == 49
    # interior runs 2, 2, 3 (the first and last are cut by the clip's ends): 3 of 7 frames off the cadence
    assert timing.judder_of(np.array([1, 2, 2, 3, 2]), 2) == pytest.approx(3 / 7)
    assert timing.judder_of(np.array([3, 1]), 3) == 0.0


def test_directions_and_ranges():
    assert create_scorer("animation_cadence").higher_is_better is None  # descriptive: twos are a choice
    assert create_scorer("held_frames").higher_is_better is None
    assert create_scorer("judder").higher_is_better is False
    assert create_scorer("black_borders").higher_is_better is False


# --------------------------------------------------------------------------- measured timing


@pytest.mark.parametrize("cadence", [1, 2, 3])
def test_cadence_of_clips_held_on_ones_twos_and_threes_after_a_real_encode(cadence, tmp_path):
    """Held frames come back from H.264 with codec noise; the noise-relative threshold still finds them."""
    frames = encoded(on(cadence, num_frames=37), tmp_path, crf=23)
    values = scores(frames)
    assert values["animation_cadence"] == cadence
    assert values["held_frames"] == pytest.approx((cadence - 1) / cadence, abs=0.04)
    assert values["judder"] == pytest.approx(0.0, abs=0.05)


def test_held_frames_are_not_byte_identical_after_encoding(tmp_path):
    frames = encoded(on(2), tmp_path, crf=23)
    changes = [timing.pair_change(frames[t][..., 1], frames[t + 1][..., 1]) for t in range(0, 32, 2)]
    assert max(changes) > 0  # some held pair carries codec noise …
    assert create_scorer("held_frames").score(sample_of(frames)).value == pytest.approx(0.5, abs=0.04)  # … and counts


def test_stutter_is_judder_and_a_frozen_clip_is_one_drawing():
    regular = on(2)
    stuttered = regular.copy()
    stuttered[[7, 8, 19, 20]] = regular[[6, 6, 18, 18]]  # holds of 3 and 1 break the twos
    assert scores(regular)["judder"] == 0.0
    assert scores(stuttered)["judder"] > 0.2 and scores(stuttered)["animation_cadence"] == 2
    frozen = np.repeat(regular[:1], 33, axis=0)
    assert scores(frozen) == {"animation_cadence": 33.0, "held_frames": 1.0, "judder": 0.0}


def test_details_describe_the_drawings():
    details = create_scorer("animation_cadence").score(sample_of(on(3))).details
    assert details["run_lengths"] == {3: 11} and details["drawings"] == 11
    assert details["drawings_per_second"] == pytest.approx(16 / 3, abs=0.01)


# --------------------------------------------------------------------------- the smoke suite's timing


def test_smoke_plan_puts_every_cadence_in_the_default_suite():
    specs = plan(**_params(None, None, None, None, None, 0))
    character = [spec.cadence for _, spec in specs if spec.action not in CAMERA_ACTIONS]
    assert {1, 2, 3} <= set(character) and min(character.count(c) for c in (1, 2, 3)) >= 8


def test_timing_scorers_identify_the_cadence_of_the_smoke_clips():
    """Character clips on ones, twos and threes are identified; camera moves stay on ones (frame cadence 1)."""
    suite = load_suite({"name": "smoke", "per_action": 1})
    found: dict[int, int] = {}
    for case in suite.cases:
        facts = case.metadata
        sample = ScoreInput(case.id, Video.read(case.video))
        cadence = create_scorer("animation_cadence").score(sample)
        assert cadence.value == facts["frame_cadence"], (case.id, facts["cadence"], cadence.details)
        assert facts["frame_cadence"] == (1 if facts["camera_motion"] != "static" else facts["cadence"])
        held = create_scorer("held_frames").score(sample).value
        if facts["frame_cadence"] > 1:
            expected = 1 - 1 / facts["frame_cadence"]
            assert held == pytest.approx(expected, abs=0.03), case.id
            assert create_scorer("judder").score(sample).value == 0.0, case.id
        found[facts["frame_cadence"]] = found.get(facts["frame_cadence"], 0) + 1
    assert found[1] >= 3 and found[2] >= 3 and found[3] >= 3, found


# --------------------------------------------------------------------------- black borders


def test_black_borders_measure_letterbox_and_pillarbox(tmp_path):
    frames = moving_square(num_frames=9, height=128, width=192).copy()
    frames[:, :16] = 0
    frames[:, -16:] = 0
    result = create_scorer("black_borders").score(sample_of(encoded(frames, tmp_path, crf=23)))
    assert result.value == pytest.approx(32 / 128, abs=2 / 128)
    assert abs(result.details["bars_px"]["top"] - 16) <= 1 and result.details["bars_px"]["left"] == 0
    pillar = moving_square(num_frames=3, height=128, width=192).copy()
    pillar[:, :, :24] = 0
    pillar[:, :, -24:] = 0
    assert create_scorer("black_borders").score(sample_of(pillar)).value == pytest.approx(48 / 192)
    assert create_scorer("black_borders").score(sample_of(moving_square(num_frames=3))).value == 0.0


def test_black_borders_need_static_black_rows():
    frames = moving_square(num_frames=3, height=64, width=96).copy()
    frames[:, :8] = 0
    frames[1, 2, 40] = 200  # one bright pixel in one frame ends the top bar at row 2
    assert black_borders.bar_sizes(frames.max(axis=(0, 3)))[0] == 2
    navy = frames.copy()
    navy[:, :8] = (10, 14, 48)  # a night-sky blue is dark, not black
    assert create_scorer("black_borders").score(sample_of(navy)).value == 0.0
    assert black_borders.border_share(100, 100, 10, 10, 0, 0) == pytest.approx(0.2)
    black = np.zeros((2, 32, 48, 3), np.uint8)
    assert create_scorer("black_borders").score(sample_of(black)).value == 1.0


# --------------------------------------------------------------------------- pixel means rise with bars and holds


def test_pixel_mean_scorers_rise_under_letterboxing_and_holds(tmp_path):
    """Documented in temporal_flickering and motion_smoothness: bars replace pixels by perfectly predicted,
    unchanging ones and holds add pairs without change, so on a real (encoded) clip both scorers *rise*."""
    frames = encoded(moving_square(num_frames=17, step=2.5), tmp_path, crf=23)
    boxed = frames.copy()
    boxed[:, :8] = 0
    boxed[:, -8:] = 0
    for name in ("temporal_flickering", "motion_smoothness"):
        scorer = create_scorer(name)
        assert scorer.score(sample_of(boxed)).value > scorer.score(sample_of(frames)).value, name
    flicker = create_scorer("temporal_flickering")
    held = frames[(np.arange(17) // 2) * 2]
    assert flicker.score(sample_of(held)).value > flicker.score(sample_of(frames)).value
