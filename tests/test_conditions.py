"""Conditions: AniSora V3 position→frame rule, guides from images or the ground truth, masks."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.conditions import BUILTIN_CONDITIONS, fit_guidance, get_condition, position_to_frame_index, resolve
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
     (1.0, 48, 47)],  # not 8k+1: clamped to the last frame
)
def test_position_to_frame_index_follows_anisora_v3(position, frames, expected):
    assert position_to_frame_index(position, frames) == expected


def test_builtin_conditions_cover_the_guidance_modes():
    assert {"i2v", "last", "first-last", "first-mid-last", "keyframes", "motion-mask", "own"} <= set(BUILTIN_CONDITIONS)
    assert get_condition("first-last").positions == (0.0, 1.0)
    assert get_condition("keyframes@1,0,0.25").positions == (0.0, 0.25, 1.0)
    for bad in ("keyframes@2", "keyframes@x", "sideways"):
        with pytest.raises(InputError):
            get_condition(bad)


def test_guides_come_from_the_ground_truth_at_snapped_indices():
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
    assert moved.guides[0].frame_index == position_to_frame_index(0.1, 81)


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
