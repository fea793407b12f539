"""Weight-free scorers against their formulas, on controlled clips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import InputError, NotApplicable
from anibench.scoring import SCORERS, FrameSampling, ScoreInput, create_scorer
from anibench.video import Video

from conftest import moving_square, textured

ALL = ["temporal_flickering", "dynamic_degree", "motion_smoothness", "static_clip", "guide_psnr", "guide_ssim",
       "mask_precision", "mask_motion", "scene_cuts"]


def sample_of(frames, fps=16.0, guides=(), region=None, prompt="", case_id="c"):
    video = Video(frames, fps)
    guidance = Guidance("test", tuple(guides), video.num_frames, fps, video.height, video.width, region)
    return ScoreInput(case_id, video, prompt, guidance)


def test_all_weight_free_scorers_are_registered_and_documented():
    for name in ALL:
        cls = SCORERS.get(name)
        assert cls.__doc__ and len(cls.__doc__) > 80, f"{name} needs a docstring stating its formula and source"
        assert cls.expectations, f"{name} declares no perturbation expectations"
        described = cls().describe()
        assert described["name"] == name and described["sampling"] and "range" in described


def test_temporal_flickering_is_vbench_formula():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] = 10
    frames[2] = 40
    value = create_scorer("temporal_flickering").score(sample_of(frames)).value
    assert value == pytest.approx((255 - (10 + 30) / 2) / 255)


def test_static_clip_has_perfect_flickering_and_no_motion():
    frames = np.repeat(textured(64, 96)[None], 17, axis=0)
    sample = sample_of(frames)
    assert create_scorer("temporal_flickering").score(sample).value == 1.0
    assert create_scorer("dynamic_degree").score(sample).value == 0.0
    assert create_scorer("static_clip").score(sample).value == 1.0
    assert create_scorer("motion_smoothness").score(sample).value == pytest.approx(1.0)


def test_dynamic_degree_threshold_and_count_follow_vbench():
    # 33 frames at 16 fps → stride 2 → 17 sampled frames → round(4*17/16) = 4 pairs needed; thres = 6*64/256 = 1.5 px
    moving = create_scorer("dynamic_degree").score(sample_of(moving_square(num_frames=33, step=3.0)))
    assert moving.value == 1.0
    assert moving.details["stride"] == 2 and moving.details["pairs_needed"] == 4
    assert moving.details["threshold_px"] == pytest.approx(1.5)
    assert len(moving.details["pair_motion_px"]) == 16
    assert np.median(moving.details["pair_motion_px"]) == pytest.approx(6.0, abs=1.5)  # 2 frames × 3 px
    # a clip moving in only 3 of its 16 pairs is not dynamic
    frames = np.repeat(moving_square(num_frames=1)[:1], 33, axis=0)
    shifted = moving_square(num_frames=33, step=3.0)
    frames[10:13] = shifted[10:13]  # pairs (8,10), (10,12), (12,14) move
    sparse = create_scorer("dynamic_degree").score(sample_of(frames))
    assert sparse.details["pairs_above"] < 4 and sparse.value == 0.0


def test_dynamic_degree_stride_follows_fps():
    assert create_scorer("dynamic_degree").score(sample_of(moving_square(num_frames=31), fps=30)).details["stride"] == 4


def test_motion_smoothness_prefers_steady_motion_to_jitter():
    steady = moving_square(num_frames=25, step=2.0)
    jitter = steady.copy()
    jitter[1::2] = np.roll(jitter[1::2], 5, axis=2)  # odd frames jump sideways
    scorer = create_scorer("motion_smoothness")
    smooth_value = scorer.score(sample_of(steady)).value
    jitter_value = scorer.score(sample_of(jitter)).value
    assert smooth_value > 0.98 and jitter_value < smooth_value - 0.01


def test_motion_smoothness_is_exactly_time_symmetric_for_odd_lengths():
    frames = moving_square(num_frames=25, step=2.5)
    scorer = create_scorer("motion_smoothness")
    assert scorer.score(sample_of(frames)).value == scorer.score(sample_of(frames[::-1].copy())).value


def test_guide_fidelity_checks_each_position():
    frames = moving_square(num_frames=17)
    guides = [GuideFrame(0.0, 0, frames[0]), GuideFrame(1.0, 16, frames[0])]  # the last guide is wrong
    psnr = create_scorer("guide_psnr").score(sample_of(frames, guides=guides))
    first, last = psnr.details["per_guide"]
    assert first["value"] == 60.0 and last["value"] < 30
    assert (first["frame_index"], first["best_frame"], first["best_offset"]) == (0, 0, 0)
    assert last["frame_index"] == 16 and 13 <= last["best_frame"] <= 16  # the window: 3 frames either side
    assert psnr.value == pytest.approx((first["value"] + last["value"]) / 2, abs=1e-3)
    ssim = create_scorer("guide_ssim").score(sample_of(frames, guides=guides))
    assert ssim.details["per_guide"][0]["value"] == pytest.approx(1.0) and ssim.details["per_guide"][1]["value"] < 0.9
    assert create_scorer("guide_psnr", max_db=80).score(sample_of(frames, guides=guides[:1])).value == 80.0


def test_guide_scorers_do_not_apply_without_guides():
    with pytest.raises(NotApplicable):
        create_scorer("guide_psnr").score(sample_of(moving_square(num_frames=5)))


def test_misplaced_or_missized_guides_are_input_errors_naming_the_case():
    frames = moving_square(num_frames=17)
    for guide, problem in [(GuideFrame(1.0, 17, frames[0]), "frame 17, outside the clip's 17 frames"),
                           (GuideFrame(0.0, 0, frames[0][:32]), "96x32, the clip's frames 96x64")]:
        for name in ("guide_psnr", "guide_ssim"):
            with pytest.raises(InputError, match=problem) as info:
                create_scorer(name).score(sample_of(frames, guides=[guide], case_id="odd_guide"))
            assert "odd_guide" in str(info.value)
    with pytest.raises(InputError, match="search_window"):
        create_scorer("guide_ssim", search_window=-1)


def test_mask_precision_counts_motion_inside_the_region():
    frames = moving_square(num_frames=17, step=2.0)  # motion only in rows 20..40
    region = np.zeros(frames.shape[:3], bool)
    region[:, 10:50] = True
    scorer = create_scorer("mask_precision")
    inside = scorer.score(sample_of(frames, region=region))
    outside = scorer.score(sample_of(frames, region=~region))
    assert inside.value > 0.95 and outside.value < 0.05
    assert inside.details["moving_pixels"] > 0 and inside.details["mask_motion"] > 0.05
    # nothing moving is no adherence: 0, not the perfect 1 it used to be; the companion says why
    still = np.repeat(frames[:1], 17, axis=0)
    assert scorer.score(sample_of(still, region=region)).value == 0.0
    assert create_scorer("mask_motion").score(sample_of(still, region=region)).value == 0.0


def test_mask_motion_is_the_moving_share_of_the_region():
    frames = moving_square(num_frames=17, step=2.0)
    band = np.zeros(frames.shape[:3], bool)
    band[:, 20:40] = True  # the square's rows: most of the band moves over the clip
    wide = np.zeros(frames.shape[:3], bool)
    wide[:, 5:60] = True
    scorer = create_scorer("mask_motion")
    narrow, broad = scorer.score(sample_of(frames, region=band)), scorer.score(sample_of(frames, region=wide))
    assert narrow.value > 0.1 and broad.value < narrow.value  # same motion, a larger region to fill
    assert narrow.details["moving_inside"] <= broad.details["moving_inside"]
    # a band exactly the square's height: DIS flow spills a pixel or two past its edges
    assert create_scorer("mask_precision").score(sample_of(frames, region=band)).value > 0.8


def test_an_empty_motion_region_is_not_applicable():
    frames = moving_square(num_frames=9)
    for name in ("mask_precision", "mask_motion"):
        with pytest.raises(NotApplicable, match="marks no region"):
            create_scorer(name).score(sample_of(frames, region=np.zeros(frames.shape[:3], bool)))


def test_scene_cuts_counts_hard_cuts():
    a = np.repeat(textured(64, 96, seed=1, level=60)[None], 20, axis=0)
    b = np.repeat(textured(64, 96, seed=2, level=200)[None], 20, axis=0)
    scorer = create_scorer("scene_cuts")
    assert scorer.score(sample_of(a)).value == 0
    two_shots = scorer.score(sample_of(np.concatenate([a, b])))
    assert two_shots.value == 1 and two_shots.details["cut_frames"] == [20]


@pytest.mark.parametrize("name", ["temporal_flickering", "dynamic_degree", "motion_smoothness", "static_clip", "scene_cuts"])
def test_one_frame_clips_are_an_input_error_naming_the_case(name):
    with pytest.raises(InputError, match="1 frame") as info:
        create_scorer(name).score(sample_of(moving_square(num_frames=1), case_id="one_frame"))
    assert "one_frame" in str(info.value)


def test_unknown_scorer_parameters_are_refused():
    with pytest.raises(InputError, match="no parameter"):
        create_scorer("guide_psnr", max_dB=3)


def test_scores_stay_in_their_declared_range():
    sample = sample_of(moving_square(num_frames=17), guides=[GuideFrame(0.0, 0, textured(64, 96, seed=9))],
                       region=np.ones((17, 64, 96), bool))
    for name in ALL:
        scorer = create_scorer(name)
        value = scorer.score(sample).value
        assert scorer.lower <= value <= scorer.upper and not math.isnan(value), name


def test_frame_sampling_rules():
    assert list(FrameSampling("fps_stride", target_fps=8).indices(49, 16)) == list(range(0, 49, 2))
    anisora = FrameSampling("uniform", count=24, within_first=144)
    assert len(anisora.indices(132, 30)) == 24 and anisora.indices(132, 30)[-1] < 132
    assert list(anisora.indices(300, 30)[:3]) == [0, 6, 12]  # arange(0, 144, 6)
    assert list(anisora.indices(20, 16)) == list(range(20))
