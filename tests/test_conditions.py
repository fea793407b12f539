"""Conditions: guide placement rules, guides from images or the ground truth, masks."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.conditions import (
    BUILTIN_CONDITIONS, GuidePlacement, fit_guidance, get_condition, place_guides, resolve,
)
from anibench.errors import InputError, NotApplicable
from anibench.images import GuideFit
from anibench.suite import Case, Guide, MaskSemantics
from anibench.video import Video

from badfiles import image
from conftest import moving_square


@pytest.mark.parametrize(
    "position, frames, expected",
    [(0.5, 81, 40), (1.0, 81, 80), (0.33, 81, 24), (0.0, 49, 0), (1.0, 49, 48), (0.5, 49, 24), (1.0, 97, 96),
     (20 / 80, 81, 16),  # int(20) / 8 = 2.5 rounds half to even → 2 → frame 16, as V3
     (1.0, 60, 56), (0.5, 61, 32),  # not 8k+1: V3 snaps off the last and the middle frame
     (1.0, 48, 47)],  # 48 would be past the end: clamped to the last frame
)
def test_anisora_v3_placement_snaps_to_multiples_of_8(position, frames, expected):
    assert place_guides((position,), frames, "anisora-v3") == (expected,)


@pytest.mark.parametrize(
    "position, frames, expected",
    [(0.0, 60, 0), (1.0, 60, 59), (1.0, 61, 60), (1.0, 2, 1), (0.5, 61, 30), (0.33, 81, 26), (0.5, 49, 24),
     (0.5, 60, 30), (0.25, 7, 2), (0.7, 6, 4), (0.1, 6, 1),  # halves (29.5, 1.5, 3.5, 0.5) round up
     (0.3, 11, 3), (0.49, 60, 29), (0.0, 1, 0), (1.0, 1, 0)],
)
def test_nearest_placement_is_exact_for_every_length(position, frames, expected):
    assert place_guides((position,), frames) == (expected,)
    assert place_guides((position,), frames, GuidePlacement.NEAREST) == (expected,)


@pytest.mark.parametrize("frames, nearest, v3", [
    (49, (0, 24, 48), (0, 24, 48)), (81, (0, 40, 80), (0, 40, 80)), (97, (0, 48, 96), (0, 48, 96)),
    (60, (0, 30, 59), (0, 32, 56)), (61, (0, 30, 60), (0, 32, 60)),
])
def test_first_mid_last_under_both_rules(frames, nearest, v3):
    """The rules agree on the 8k+1 lengths AniSora generates and part ways on others."""
    assert place_guides((0.0, 0.5, 1.0), frames) == nearest
    assert place_guides((0.0, 0.5, 1.0), frames, "anisora-v3") == v3


def test_bad_placement_inputs_are_refused():
    with pytest.raises(ValueError):
        place_guides((1.5,), 10)
    with pytest.raises(ValueError):
        place_guides((0.5,), 0)
    with pytest.raises(ValueError):
        place_guides((0.5,), 10, "sideways")


def test_builtin_conditions_cover_the_guidance_modes():
    assert {"i2v", "last", "first-last", "first-mid-last", "keyframes", "motion-mask", "own"} <= set(BUILTIN_CONDITIONS)
    assert get_condition("first-last").positions == (0.0, 1.0)
    assert get_condition("keyframes@1,0,0.25").positions == (0.0, 0.25, 1.0)
    for bad in ("keyframes@2", "keyframes@x", "sideways"):
        with pytest.raises(InputError):
            get_condition(bad)


def test_guides_come_from_the_ground_truth_at_the_nearest_frames():
    gt = Video(moving_square(num_frames=49), 16)
    guidance = resolve(Case("c", video=None), get_condition("first-mid-last"), ground_truth=gt)
    assert [g.frame_index for g in guidance.guides] == [0, 24, 48]
    assert all(np.array_equal(g.image, gt.frames[g.frame_index]) for g in guidance.guides)
    assert (guidance.num_frames, guidance.fps, guidance.height, guidance.width) == (49, 16.0, 64, 96)


def test_case_images_take_precedence_and_are_fitted(tmp_path):
    gt = Video(moving_square(num_frames=49), 16)
    last = image(tmp_path / "last.png", np.full((128, 192, 3), 77, np.uint8))
    case = Case("c", guides=(Guide(1.0, last, GuideFit.RESIZE),))
    guidance = resolve(case, get_condition("first-last"), ground_truth=gt)
    first, end = guidance.guides
    assert first.source.startswith("ground-truth") and end.source == str(last)
    assert end.image.shape == (64, 96, 3) and (end.image == 77).all()


def test_pinned_frame_index_beats_the_position_rule(tmp_path):
    gt = Video(moving_square(num_frames=33), 16)
    img = image(tmp_path / "f3.png", gt.frames[3])
    case = Case("c", guides=(Guide(0.1, img, frame_index=3),))
    guidance = resolve(case, get_condition("own"), ground_truth=gt)
    assert guidance.guides[0].frame_index == 3
    # on a clip of another length the position decides
    moved = fit_guidance(guidance, 81, 64, 96)
    assert moved.guides[0].frame_index == 8  # nearest to 80 * 0.1
    # the rule a generator declares places it too, even on the same length
    assert fit_guidance(guidance, 33, 64, 96, "anisora-v3").guides[0].frame_index == 0  # int(3.2) / 8 → 0


def test_without_ground_truth_missing_positions_are_not_applicable(tmp_path):
    first = image(tmp_path / "f.png", np.zeros((32, 48, 3), np.uint8))
    case = Case("c", guides=(Guide(0.0, first),))
    guidance = resolve(case, get_condition("i2v"))
    assert guidance.num_frames == 49 and guidance.height == 32
    with pytest.raises(NotApplicable, match="no guide image at position 1"):
        resolve(case, get_condition("first-last"))
    with pytest.raises(NotApplicable, match="motion mask"):
        resolve(case, get_condition("motion-mask"))


def test_size_mismatch_names_case_and_file(tmp_path):
    gt = Video(moving_square(num_frames=9), 16)
    img = image(tmp_path / "big.png", np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(InputError) as info:
        resolve(Case("c1", guides=(Guide(0.0, img),)), get_condition("i2v"), ground_truth=gt)
    assert "c1" in str(info.value) and "big.png" in str(info.value)


@pytest.mark.parametrize("semantics", [MaskSemantics.MOTION, MaskSemantics.KEEP])
def test_motion_region_follows_mask_semantics_and_is_resampled(tmp_path, semantics):
    mask = np.zeros((5, 32, 48, 3), np.uint8)
    mask[:, :, :24] = 255  # left half white
    path = Video(mask, 16).write(tmp_path / "mask.mp4")
    gt = Video(moving_square(num_frames=9), 16)
    case = Case("c", mask=path, mask_semantics=semantics)
    region = resolve(case, get_condition("motion-mask"), ground_truth=gt).motion_region
    assert region.shape == (9, 64, 96)
    left, right = region[:, :, :40].mean(), region[:, :, 56:].mean()
    assert (left, right) == ((1.0, 0.0) if semantics is MaskSemantics.MOTION else (0.0, 1.0))


def test_resolve_places_guides_by_a_rule_with_images_from_the_nearest_ground_truth_frames():
    gt = Video(moving_square(num_frames=81), 16)
    condition = get_condition("keyframes@0,0.33,1")
    given = resolve(Case("c"), condition, ground_truth=gt)
    assert [g.frame_index for g in given.guides] == [0, 26, 80] and given.placement is GuidePlacement.NEAREST
    v3 = resolve(Case("c"), condition, ground_truth=gt, placement="anisora-v3")
    assert [g.frame_index for g in v3.guides] == [0, 24, 80] and v3.placement is GuidePlacement.ANISORA_V3
    # the keyframe at 0.33 is still the ground truth's frame 26; an AniSora model conditions on it at 24
    assert np.array_equal(v3.guides[1].image, gt.frames[26]) and v3.guides[1].source == "ground-truth frame 26"
    explicit = resolve(Case("c"), condition, ground_truth=gt, placement=[1, 27, 79])
    assert [g.frame_index for g in explicit.guides] == [1, 27, 79]
    # on a clip of another length each guidance re-places by its own rule
    assert [g.frame_index for g in fit_guidance(v3, 61, 64, 96).guides] == [0, 16, 60]
    assert [g.frame_index for g in fit_guidance(given, 61, 64, 96).guides] == [0, 20, 60]
    assert fit_guidance(given, 81, 64, 96) is given  # nothing to change


def test_bad_guide_placements_are_input_errors_naming_the_case():
    gt = Video(moving_square(num_frames=9), 16)
    guidance = resolve(Case("c"), get_condition("first-last"), ground_truth=gt)
    with pytest.raises(InputError, match=r"\[9\] are outside the clip's 9 frames"):
        fit_guidance(guidance, 9, 64, 96, [0, 9])
    with pytest.raises(InputError, match="1 guide frame indices given for 2 guides"):
        fit_guidance(guidance, 9, 64, 96, [0])
    with pytest.raises(InputError, match="whole numbers"):
        fit_guidance(guidance, 9, 64, 96, [0, 4.5])
    with pytest.raises(InputError, match="unknown guide placement 'sideways'"):
        fit_guidance(guidance, 9, 64, 96, "sideways")
    with pytest.raises(InputError) as info:
        resolve(Case("c7"), get_condition("first-last"), ground_truth=gt, placement=[0, 12])
    assert "c7" in str(info.value)
